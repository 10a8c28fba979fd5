"""structlog set-up: JSON lines with job/chunk ids, phones masked, secrets dropped.

Three safety nets under the rule "never log a phone or a secret": every string
value is scanned for mainland mobile numbers (masked ``138****1234``), keys
that name secrets are replaced by ``[redacted]``, and URL query strings are
dropped from every line, ours and the libraries' (urllib3 logs each request
line at DEBUG, and requests' exceptions quote the URL: aiofish's GET pulls
carry the password hash in the query). Message text is logged only at DEBUG,
by the code that chose to.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from dispatcher.phones import mask_in_text

_SECRET_KEYS = re.compile(r"pass(word)?|secret|access_?key|api_?key|aes|token|sign$", re.I)


# A '?' and what follows it up to a space or quote, where it holds a key=value
# pair: a URL's query string (request lines, URLs in exception text).
_QUERY = re.compile(r"\?[^\s\"'?]*=[^\s\"']*")


def mask_text(text: str) -> str:
    """``text`` with phones masked and URL query strings replaced by ``?[query]``."""
    return mask_in_text(_QUERY.sub("?[query]", text))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET_KEYS.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact secret-named keys, mask phones in every value."""
    for key in list(event):
        event[key] = "[redacted]" if _SECRET_KEYS.search(key) else _scrub(event[key])
    return event


#: Loggers bind their configuration on first use (structlog's cache, faster in production). The
#: test suite turns it off: it configures logging more than once in one process, and a logger
#: cached under one test's configuration (e.g. a WARNING filter) would keep it for every later test.
CACHE_LOGGERS = True


def configure(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Configure structlog and stdlib logging (idempotent) to write to stderr."""
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines \
        else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=CACHE_LOGGERS,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MaskingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # A handler that fails to write (closed stream) would otherwise print the
    # record's raw message and arguments to stderr, unmasked, with a traceback.
    logging.raiseExceptions = False
    root.setLevel(level.upper())


class _MaskingFormatter(logging.Formatter):
    """stdlib records (Celery's own, gunicorn's) get phones masked too."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))
