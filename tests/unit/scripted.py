"""A requests transport adapter that records requests and plays back scripted answers.

For unit tests of request building and answer parsing through the real
``requests`` stack (mounted on a Session, as STYLE.md's "inject, don't patch" asks).
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import BaseAdapter


class ScriptedAdapter(BaseAdapter):
    """Records every request and answers the next scripted ``(status, body)``."""

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        status, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = body
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass
