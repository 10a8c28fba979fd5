"""TLS failures told apart by phase: before the request left, or after it may have.

urllib3 2.x turns every ``ssl.SSLError`` into its own ``SSLError`` and
``requests`` into ``requests.exceptions.SSLError``, whether it came from the
handshake (nothing sent yet) or from reading the answer (the request was
written: the gateway may have taken it). The exception type alone cannot tell
which. Two things can:

* a certificate that fails verification (``ssl.SSLCertVerificationError``,
  urllib3's ``CertificateError``) is only ever found during the handshake;
* the sessions this project builds (:func:`mount_phase_marking`) connect
  through :class:`PhaseMarkingHTTPSConnection`, which re-raises whatever
  fails inside ``connect()`` (TCP, proxy tunnel, TLS handshake) as
  :class:`TLSHandshakeError`, or as urllib3's ``ConnectTimeoutError`` when the
  handshake timed out. urllib3 only writes the request after ``connect()``
  returned, so these are known to be before sending.

Any other TLS error (bad record MAC, abrupt close, an alert after the
handshake) is taken as "may have been sent". With a caller's own session (no
phase marking) a handshake failure other than certificate verification cannot
be told from a read failure and is taken as "may have been sent" too: the safe
answer for sends (ambiguous, reconciled, never resent blindly). So is a TLS 1.3
server refusing a client certificate, which the client only learns after it
has written the request.
"""

from __future__ import annotations

import ssl
from typing import Any

import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.poolmanager import PoolManager
from urllib3.util.ssl_match_hostname import CertificateError


class TLSHandshakeError(urllib3.exceptions.SSLError):
    """Raised when TLS setup failed inside ``connect()``: no byte of the request was written."""


class PhaseMarkingHTTPSConnection(HTTPSConnection):
    """An HTTPS connection whose connect-phase TLS failures say that they happened before sending."""

    def connect(self) -> None:
        """Connect and handshake; raises TLSHandshakeError or ConnectTimeoutError for TLS failures."""
        try:
            super().connect()
        except (ssl.SSLError, CertificateError, urllib3.exceptions.SSLError) as exc:
            if isinstance(exc, TLSHandshakeError):
                raise
            raise TLSHandshakeError(exc) from exc
        except TimeoutError as exc:
            # _new_conn already turns a TCP connect timeout into ConnectTimeoutError
            # (not a socket timeout), so a socket timeout here is the handshake's.
            raise urllib3.exceptions.ConnectTimeoutError(self, f"TLS handshake timed out ({exc})") from exc


class PhaseMarkingHTTPSConnectionPool(HTTPSConnectionPool):
    """An HTTPS pool that connects with :class:`PhaseMarkingHTTPSConnection`."""

    ConnectionCls = PhaseMarkingHTTPSConnection


def mount_phase_marking(manager: PoolManager) -> PoolManager:
    """Make ``manager``'s HTTPS pools mark connect-phase TLS failures; returns it."""
    manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme, "https": PhaseMarkingHTTPSConnectionPool}
    return manager


class PhaseMarkingAdapter(HTTPAdapter):
    """An HTTPAdapter whose pools (direct and through proxies) mark connect-phase TLS failures."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build the pool manager, then switch its HTTPS pools to phase-marking ones."""
        super().init_poolmanager(*args, **kwargs)
        mount_phase_marking(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The proxy's pool manager, with phase-marking HTTPS pools."""
        return mount_phase_marking(super().proxy_manager_for(proxy, **proxy_kwargs))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps: args, ``reason``, ``__cause__``, ``__context__``."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [getattr(item, "reason", None), item.__cause__, item.__context__, *item.args]
    return seen


def failed_before_sending(exc: BaseException) -> bool:
    """Whether a TLS failure is known to have happened before any byte of the request left."""
    for item in _chain(exc):
        if isinstance(item, TLSHandshakeError | ssl.SSLCertVerificationError | CertificateError):
            return True
    return False
