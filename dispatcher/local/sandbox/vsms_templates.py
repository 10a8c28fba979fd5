"""Video-SMS template frames: checks and rendering. Pure.

A template is a list of frames items ``{orderBy, frameIndex, extType, text}``:
``extType`` 1 is text (may hold ``#p_1#``..``#p_5#``), 2 names an uploaded file.
The number of variables a template needs is the highest placeholder index used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from typing import Any

from aiohttp import web

_ANY_PLACEHOLDER = re.compile(r"#p_([^#]*)#")
_VALID_INDEX = frozenset("12345")


class VsmsReject(Exception):
    """Raised to answer a vsms/isms string ``code`` (``invalid_tpl``…)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def file_size(field: web.FileField) -> int:
    """Size in bytes of an uploaded file (the stream is left at its start)."""
    stream = field.file
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def check_frames(content: object, filenames: Collection[str]) -> tuple[list[dict[str, Any]], int]:
    """Validate the frame list; return it sorted and the number of variables it needs.

    Raises ``VsmsReject``: invalid_content (not a list of well-formed items, or a
    placeholder other than ``#p_1#``..``#p_5#``), invalid_resource (a file item
    naming no uploaded file).
    """
    if not isinstance(content, list) or not content:
        raise VsmsReject("invalid_content")
    needed = 0
    for item in content:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise VsmsReject("invalid_content")
        if not all(isinstance(item.get(k), int) for k in ("orderBy", "frameIndex", "extType")):
            raise VsmsReject("invalid_content")
        if item["extType"] == 2:
            if item["text"] not in filenames:
                raise VsmsReject("invalid_resource")
        elif item["extType"] == 1:
            for index in _ANY_PLACEHOLDER.findall(item["text"]):
                if index not in _VALID_INDEX:
                    raise VsmsReject("invalid_content")
                needed = max(needed, int(index))
        else:
            raise VsmsReject("invalid_content")
    frames = sorted(content, key=lambda f: (f["frameIndex"], f["orderBy"]))
    return frames, needed


def render(frames: list[dict[str, Any]], values: list[str]) -> str:
    """The message as text: text frames with variables substituted, files as ``[name]``."""
    lines = []
    for frame in frames:
        text = frame["text"]
        if frame["extType"] == 2:
            lines.append(f"[{text}]")
            continue
        for i, value in enumerate(values, start=1):
            text = text.replace(f"#p_{i}#", value)
        lines.append(text)
    return "\n".join(lines)
