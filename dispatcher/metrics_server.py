"""The worker exporter's HTTP server: ``GET /metrics`` for ``sms-dispatch metrics --bind HOST:PORT``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry

from dispatcher.metrics_export import render


def exporter_app(registry: CollectorRegistry) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    """A WSGI app answering ``GET /metrics`` with ``registry`` (404 for anything else)."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD", "GET") != "GET":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        body, content_type = render(registry)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access line on stderr per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def exporter_server(bind: str, registry: CollectorRegistry) -> WSGIServer:
    """The exporter's HTTP server on ``bind`` (``HOST:PORT``; port 0 picks a free one), not yet serving.

    Raises ``ValueError`` for a malformed ``bind``, ``OSError`` when it cannot listen.
    """
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--bind must be HOST:PORT, got {bind!r}")
    return make_server(host or "0.0.0.0", int(port), exporter_app(registry),  # noqa: S104 - the operator's choice
                       handler_class=_QuietHandler)
