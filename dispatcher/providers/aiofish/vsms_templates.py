"""Video SMS (vsms) templates: submit one for audit, ask its audit state; both keep the result.

A vsms template (frames of text and files) is audited by the vendor before it may
be sent. What we learn of its audit — from :func:`submit_template` (pending), from
:func:`query_template` or from the vendor's audit push to the webhook — is kept in
Redis (:mod:`dispatcher.template_audits`), and ``Dispatcher.send_video`` refuses a
template known to be pending or rejected before anything is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dispatcher.errors import Problem, ValidationError
from dispatcher.providers.aiofish.vsms import VSMS, Frame
from dispatcher.providers.base import system_clock_ms
from dispatcher.template_audits import PENDING, Audit, store_audit


def frames_of(specs: Sequence[str]) -> tuple[list[Frame], dict[str, bytes]]:
    """``["text:…", "file:PATH", …]`` as the template's frames (one item each, in order) and its uploads.

    Raises ``ValidationError`` naming ``frames[i]`` for an unknown kind or a file that cannot be read.
    """
    frames: list[Frame] = []
    files: dict[str, bytes] = {}
    problems: list[Problem] = []
    for i, spec in enumerate(specs):
        kind, sep, value = spec.partition(":")
        if kind == "text" and sep:
            frames.append(Frame.of_text(i + 1, 1, value))
        elif kind == "file" and value:
            path = Path(value)
            try:
                files[path.name] = path.read_bytes()
            except OSError as exc:
                problems.append(Problem(f"frames[{i}]", f"cannot read {value}: {exc.strerror}"))
                continue
            frames.append(Frame.of_file(i + 1, 1, path.name))
        else:
            problems.append(Problem(f"frames[{i}]", "must be text:TEXT or file:PATH"))
    if problems:
        raise ValidationError(problems)
    return frames, files


def submit_template(rt: Any, account: str, title: str, frames: Sequence[Frame], files: dict[str, bytes]) -> str:
    """Submit a template for audit through ``rt`` (a Runtime); keep it as pending; return its id.

    Raises ``ValidationError`` before sending, ``ConfigurationError`` for an unknown
    account, the gateway's errors (``AmbiguousError``: it may have been created).
    """
    tpl_id = str(rt.client(VSMS, account).submit_template(title, frames, files))
    store_audit(rt.redis, rt.keys, VSMS, account, Audit(tpl_id, PENDING, "", system_clock_ms()))
    return tpl_id


def query_template(rt: Any, account: str, tpl_id: str) -> Audit:
    """Ask the gateway for the template's audit state and keep it. Raises the gateway's errors."""
    status = rt.client(VSMS, account).template_status(tpl_id)
    audit = Audit(status.tpl_id, int(status.audit_status), status.reason or "", system_clock_ms())
    store_audit(rt.redis, rt.keys, VSMS, account, audit)
    return audit
