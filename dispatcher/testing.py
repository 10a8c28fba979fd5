"""An in-memory stand-in for :class:`~dispatcher.producer.Dispatcher`, for an app's own tests. Pure.

Like Django's locmem e-mail backend: nothing is stored in Redis, nothing is queued
for Celery, nothing reaches a gateway. Each job the app sends is kept in
:attr:`FakeDispatcher.outbox`, and the test decides what becomes of its recipients
(:meth:`~FakeDispatcher.deliver`, :meth:`~FakeDispatcher.fail`, :meth:`~FakeDispatcher.reject`,
:meth:`~FakeDispatcher.cap`, …), after which ``status``, ``lookup`` and ``outcomes`` answer as the real producer does.
``estimate`` counts as the real one does; set :attr:`FakeDispatcher.balances` to meet the
balance guard::

    from dispatcher.testing import FakeDispatcher

    fake = FakeDispatcher()
    job = fake.send_template("demo", template_code="1000000000000000002", phones=["13800138000"],
                             params=["493817"], priority="otp", bid="order-17")
    assert fake.outbox[0].params == ["493817"]
    fake.deliver(job.job_id)
    assert fake.status(job.job_id).counts["delivered"] == 1

Requests are validated by the same code as the real ``Dispatcher`` (account lookup,
:func:`dispatcher.producer.check_send`, the gateways' own checks), so a
request the fake takes is one the real producer takes, and a ``ValidationError`` names
the same fields. Accounts: pass the app's ``Accounts`` (e.g. ``load_accounts(path)``) to
refuse unknown names and check the opass templates it declares as production would; by
default any account name is taken and no template is checked.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dispatcher import pauses
from dispatcher.caps import CAPPED
from dispatcher.config.accounts import AccountConfig, Accounts
from dispatcher.deliveries import STATES, TERMINAL, Delivery
from dispatcher.estimates import BalanceReading
from dispatcher.jobs import JobSpec
from dispatcher.ledger import SUPPRESSED_ENTRY
from dispatcher.phones import normalise_mainland
from dispatcher.producer import JobHandle, JobStatus, Producer
from dispatcher.providers import registry
from dispatcher.providers.base import system_clock_ms
from dispatcher.records import check_lookup
from dispatcher.redact import build_repr, phones_repr, size_repr
from dispatcher.suppression import SUPPRESSED, MemorySuppressions, list_phone
from dispatcher.template_audits import Audit

#: Default vendor codes a test's :meth:`FakeDispatcher.deliver` / ``fail`` / ``reject`` record.
DELIVERED_CODE = "DELIVRD"
FAILED_CODE = "UNDELIV"
REJECTED_CODE = "REJECTD"


class AnyAccounts(Accounts):
    """Accounts that take any name under either provider (the fake's default)."""

    def __init__(self) -> None:
        super().__init__({})

    def get(self, provider: str, name: str) -> AccountConfig:
        """A placeholder account ``provider:name`` (its plug's :attr:`~registry.Gateway.placeholder`);
        refuses only a gateway nobody registered (``ConfigurationError``)."""
        return AccountConfig(provider, registry.gateway(provider).placeholder(name))


@dataclass(frozen=True, slots=True)
class SentJob:
    """One job the app sent, as the fake took it (the phones normalised and de-duplicated).

    ``params`` (opass, same for everyone) or ``content`` (aiofish, same for everyone) is
    set for the shared kinds; ``per_phone`` maps each phone to its params or content for
    the per-phone kinds (``recipients=``; a video SMS: its values). ``tag`` is the caller's
    ``bid`` / ``sms_id`` / ``uuid``; ``template_code`` is the opass code or the video SMS
    template id; ``send_at`` is epoch ms, or ``None`` for now.
    """

    job_id: str
    provider: str
    account: str
    kind: str
    phones: list[str]
    priority: str
    tag: str = ""
    send_at: int | None = None
    template_code: str = ""
    params: list[str] | None = None
    content: str | None = None
    per_phone: dict[str, Any] | None = None
    extend_code: str = ""
    sub_code: str = ""
    #: Recipients left out as on the account's suppression list (recorded ``suppressed``, not sent).
    suppressed: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # phones and texts are personal: tests print reprs on failure
        return build_repr(self, job_id=repr(self.job_id), provider=repr(self.provider), account=repr(self.account),
                          kind=repr(self.kind), phones=phones_repr(self.phones), priority=repr(self.priority),
                          tag=repr(self.tag), suppressed=phones_repr(self.suppressed),
                          per_phone=size_repr(None if self.per_phone is None else list(self.per_phone)))

    def text_for(self, phone: str) -> Any:
        """What ``phone`` is sent: the template params (opass) or the content (aiofish)."""
        if self.per_phone is not None:
            return self.per_phone[phone]
        return self.params if self.params is not None else self.content


@dataclass(slots=True)
class _Job:
    sent: SentJob
    deliveries: dict[str, Delivery]


class FakeDispatcher(Producer):
    """The producer API in memory: same methods, same signatures, same validation; see the module doc.

    Thread-safe (a Django test server may call it from several threads).
    """

    def __init__(self, accounts: Accounts | None = None, *, clock_ms: Callable[[], int] = system_clock_ms) -> None:
        self.accounts: Accounts = accounts if accounts is not None else AnyAccounts()
        #: Every job sent, oldest first; a test may clear it.
        self.outbox: list[SentJob] = []
        self._clock_ms = clock_ms
        self._jobs: dict[str, _Job] = {}
        self._audits: dict[tuple[str, str], Audit] = {}
        self._feed: list[Delivery] = []
        self._paused: dict[tuple[str, str], str] = {}
        self._cancelled: set[str] = set()
        self._uplinks: dict[tuple[str, str], list[dict[str, Any]]] = {}
        #: The suppression lists (``suppress`` / ``unsuppress`` / ``is_suppressed``, and a
        #: :meth:`receive` of an unsubscribe keyword), as production keeps them.
        self.suppressions = MemorySuppressions()
        #: ``(provider, account) -> remaining messages`` a test sets to meet the balance guard: a
        #: ``send_*`` needing more raises ``InsufficientBalanceError``; an account not listed has
        #: an unknown balance and is not checked (as when the real one cannot read it).
        self.balances: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        #: route send id -> (route name, its jobs' ids) (``send``); ``status`` of the id sums them.
        self._routes: dict[str, tuple[str, list[str]]] = {}

    # The producer API -------------------------------------------------------------------------------

    def status(self, job_id: str, *, phones: bool = False) -> JobStatus:
        """The job's funnel (every state counted); with ``phones=True`` each recipient's :class:`Delivery`.

        Raises ``KeyError`` for an unknown job.
        """
        with self._lock:
            if job_id in self._routes:
                return self._route_status(job_id, phones)
            job = self._job(job_id)
            sent = job.sent
            counts = dict.fromkeys(STATES, 0)
            for d in job.deliveries.values():
                counts[d.state] += 1
            return JobStatus(job_id, sent.kind, sent.provider, sent.account, len(job.deliveries), counts,
                             self._paused.get((sent.provider, sent.account)),
                             list(job.deliveries.values()) if phones else None, tag=sent.tag,
                             cancelled=job_id in self._cancelled)

    def _route_status(self, route_id: str, phones: bool) -> JobStatus:
        """A route send's jobs summed (``kind`` ``"route"``), as the real one sums them (nothing moves here)."""
        counts = dict.fromkeys(STATES, 0)
        name, job_ids = self._routes[route_id]
        records = [d for job_id in job_ids for d in self._jobs[job_id].deliveries.values()]
        for d in records:
            counts[d.state] += 1
        return JobStatus(route_id, "route", "", name, len(records), counts, None, records if phones else None)

    def _is_paused(self, provider: str, account: str) -> bool:
        with self._lock:
            return (provider, account) in self._paused

    def _keep_route(self, route_id: str, route: Any, tpl: Any, same: Any, values: Any, *, priority: str,
                    send_at_ms: int | None) -> None:
        with self._lock:
            self._routes[route_id] = (route.name, [])

    def _add_route_job(self, route_id: str, handle: JobHandle, moved: int = 0) -> None:
        with self._lock:
            self._routes[route_id][1].append(handle.job_id)

    def lookup(self, *, message_id: str | None = None, phone: str | None = None, provider: str | None = None,
               limit: int = 100) -> list[Delivery]:
        """Every recipient record with this vendor ``message_id`` or this ``phone``, newest first.

        Raises ``ValidationError`` for a phone that is not a mainland mobile number or when
        neither or both keys are given.
        """
        message_id, wanted = check_lookup(message_id=message_id, phone=phone, provider=provider)
        with self._lock:
            found = [d for job in self._jobs.values() for d in job.deliveries.values()
                     if (provider is None or d.provider == provider)
                     and (d.phone == wanted if wanted is not None else d.message_id == message_id)]
        # Jobs are kept in send order: reversed, it is newest first among equal times.
        found.reverse()
        found.sort(key=lambda d: d.at_ms, reverse=True)
        return found[:limit]

    def outcomes(self, cursor: str = "0", *, limit: int = 1000,
                 block_ms: int | None = None) -> tuple[list[Delivery], str]:
        """Final outcomes recorded after ``cursor``, oldest first, and the cursor to pass next time.

        ``"0"`` starts at the oldest, ``"$"`` at the next one. ``block_ms`` is accepted and
        not waited on: in a test nothing can arrive while the caller waits. Raises
        ``ValueError`` for a cursor this method did not return.
        """
        with self._lock:
            start = len(self._feed) if cursor == "$" else self._position(cursor)
            taken = self._feed[start : start + limit]
            return taken, f"{start + len(taken)}-0"

    def cancel(self, job_id: str) -> int:
        """Cancel every recipient not yet submitted (``pending``); how many became ``cancelled``.

        Raises ``KeyError`` for an unknown job.
        """
        with self._lock:
            job = self._job(job_id)
            self._cancelled.add(job_id)
            pending = [p for p, d in job.deliveries.items() if d.state == "pending"]
            for p in pending:
                self._settle(job, p, "cancelled", "", "")
            return len(pending)

    def pause(self, provider: str, account: str, reason: str = pauses.DEFAULT_REASON) -> None:
        """Mark the account paused: ``status`` of its jobs shows the reason (as the real one
        stores it) until :meth:`resume`. Raises ``ConfigurationError`` for an unknown account."""
        with self._lock:
            self.accounts.get(provider, account)
            self._paused[(provider, account)] = pauses.operator_reason(reason)

    def resume(self, provider: str, account: str) -> int:
        """Lift a :meth:`pause`; return how many of the account's jobs still have pending recipients
        (the real one returns the chunks it re-queues). Raises ``ConfigurationError`` for an unknown account."""
        with self._lock:
            self.accounts.get(provider, account)
            self._paused.pop((provider, account), None)
            return sum(1 for job in self._jobs.values()
                       if (job.sent.provider, job.sent.account) == (provider, account)
                       and any(d.state == "pending" for d in job.deliveries.values()))

    def uplinks(self, provider: str, account: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest replies given with :meth:`receive`: ``{phone, content, ext, at_ms, message_id}``."""
        with self._lock:
            return list(reversed(self._uplinks.get((provider, account), [])))[:limit]

    # What a test drives ------------------------------------------------------------------------------

    def accept(self, job_id: str, phone: str | None = None) -> list[Delivery]:
        """The gateway took the recipient (``phone``, else every pending one): ``accepted``, with a message id."""
        return self.settle(job_id, "accepted", phone)

    def deliver(self, job_id: str, phone: str | None = None, code: str = DELIVERED_CODE,
                detail: str = "") -> list[Delivery]:
        """A delivery receipt for ``phone`` (else every recipient not yet final): ``delivered``."""
        return self.settle(job_id, "delivered", phone, code, detail)

    def fail(self, job_id: str, phone: str | None = None, code: str = FAILED_CODE,
             detail: str = "") -> list[Delivery]:
        """A failure receipt for ``phone`` (else every recipient not yet final): ``failed``."""
        return self.settle(job_id, "failed", phone, code, detail)

    def reject(self, job_id: str, phone: str | None = None, code: str = REJECTED_CODE,
               detail: str = "") -> list[Delivery]:
        """The gateway refused ``phone`` (else every recipient not yet final) at submission: ``rejected``."""
        return self.settle(job_id, "rejected", phone, code, detail)

    def cap(self, job_id: str, phone: str | None = None, detail: str = "") -> list[Delivery]:
        """A frequency cap held ``phone`` (else every recipient not yet final) back: ``rejected`` with
        code ``capped``, as a claim records it (``detail`` says which cap, e.g. ``bulk cap 1 per 60 s``)."""
        return self.settle(job_id, "rejected", phone, CAPPED, detail)

    def settle(self, job_id: str, state: str, phone: str | None = None, code: str = "",
               detail: str = "") -> list[Delivery]:
        """Move ``phone`` (else every recipient not yet final) to ``state``; the changed records.

        Raises ``KeyError`` for an unknown job or a phone not in it, ``ValueError`` for a
        state that is not a recipient state or a recipient already final (the real ledger
        keeps a final state).
        """
        if state not in STATES or state in ("pending", "sending"):
            raise ValueError(f"{state!r} is not a state a test can move a recipient to")
        with self._lock:
            job = self._job(job_id)
            if phone is None:
                chosen = [p for p, d in job.deliveries.items() if not d.final]
            else:
                number = normalise_mainland(phone) or phone
                if number not in job.deliveries:
                    raise KeyError(f"job {job_id} has no recipient {phone!r}")
                if job.deliveries[number].final:
                    raise ValueError(f"{number} of job {job_id} is already {job.deliveries[number].state}")
                chosen = [number]
            return [self._settle(job, p, state, code, detail) for p in chosen]

    def receive(self, provider: str, account: str, phone: str, content: str, *, ext: str = "") -> None:
        """A reply (MO) from ``phone`` arrives for the account; :meth:`uplinks` lists it. A reply that
        is an unsubscribe keyword of the account (``退订``, ``TD`` …) puts the phone on its suppression
        list, as production does."""
        with self._lock:
            self._uplinks.setdefault((provider, account), []).append(
                {"phone": phone, "content": content, "ext": ext, "at_ms": self._clock_ms(), "message_id": ""})
            listed = list_phone(phone)
            if listed is not None and self.accounts.get(provider, account).unsubscribe.matches(content):
                self.suppressions.add(provider, account, [listed])

    def job(self, job_id: str) -> SentJob:
        """The outbox record of ``job_id``; raises ``KeyError`` for an unknown job."""
        with self._lock:
            return self._job(job_id).sent

    # Internals --------------------------------------------------------------------------------------

    def _balance(self, provider: str, account: str, *, ask_gateway: bool, fresh: bool = False) -> BalanceReading:
        """The balance a test set in :attr:`balances`, as if just read; unknown otherwise."""
        with self._lock:
            remaining = self.balances.get((provider, account))
        if remaining is None:
            return BalanceReading(None, note="not set in FakeDispatcher.balances")
        return BalanceReading(remaining, 0.0, note="set by the test")

    def set_template_audit(self, account: str, tpl_id: str, state: int, reason: str = "") -> None:
        """Make a video SMS template's audit known (100 pending, 200 approved, 400 rejected), as an audit
        push would: ``send_video`` naming it then refuses it if pending or rejected, as production does."""
        with self._lock:
            self._audits[(account, tpl_id)] = Audit(tpl_id, state, reason, self._clock_ms())

    def _template_audit(self, provider: str, account: str, tpl_id: str) -> Audit | None:
        with self._lock:
            return self._audits.get((account, tpl_id))

    def _take(self, spec: JobSpec, chunk_size: int, progress: Callable[[int], None] | None) -> JobHandle:
        """Record a job that passed the checks in :attr:`outbox`, every recipient ``pending``."""
        meta = spec.meta
        tag = meta.get("tag", "")
        params = "params" in meta and spec.payloads is None  # a template filled in the same for all
        send_at = int(meta["send_at_ms"]) or None
        with self._lock:
            job_id = f"{next(self._ids):016x}"
            payloads = spec.payloads
            sent = SentJob(
                job_id, spec.provider, spec.account, spec.kind, list(spec.phones), meta["priority"], tag, send_at,
                template_code=meta.get("template_code") or meta.get("template_id", ""),
                params=json.loads(meta["params"]) if params else None,
                content=meta.get("content") if payloads is None else None,
                per_phone=dict(zip(spec.phones, payloads, strict=True)) if payloads is not None else None,
                extend_code=meta.get("extend_code", ""), sub_code=meta.get("sub_code", ""),
                suppressed=list(spec.suppressed),
            )
            now = self._clock_ms()
            records = {p: Delivery(job_id, spec.provider, spec.account, p, "pending", at_ms=now, tag=tag)
                       for p in spec.phones}
            # Final when stored, as the ledger records them: on the feed, listed after the others.
            skipped = [Delivery(job_id, spec.provider, spec.account, p, SUPPRESSED, SUPPRESSED_ENTRY.code,
                                SUPPRESSED_ENTRY.detail, at_ms=now, tag=tag) for p in spec.suppressed]
            records.update((d.phone, d) for d in skipped)
            self._feed += skipped
            self._jobs[job_id] = _Job(sent, records)
            self.outbox.append(sent)
        if progress is not None:
            progress(len(spec.phones))
        return JobHandle(job_id, spec.provider, spec.account, len(records),
                         math.ceil(len(spec.phones) / chunk_size), spec.duplicates, spec.invalid, True,
                         len(spec.suppressed))

    def _job(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"no job {job_id}") from None

    def _settle(self, job: _Job, phone: str, state: str, code: str, detail: str) -> Delivery:
        old = job.deliveries[phone]
        message_id = old.message_id or ("" if state in ("rejected", "cancelled") else f"fake-{old.job_id}")
        new = replace(old, state=state, code=code, detail=detail, message_id=message_id, at_ms=self._clock_ms())
        job.deliveries[phone] = new
        if state in TERMINAL:
            self._feed.append(new)
        return new

    def _position(self, cursor: str) -> int:
        """The feed index a cursor of ours points after; ``ValueError`` for any other text."""
        if cursor == "0":
            return 0
        number, dash, zero = cursor.partition("-")
        if not (dash and zero == "0" and number.isdigit() and int(number) <= len(self._feed)):
            raise ValueError(f"{cursor!r} is not a cursor returned by outcomes()")
        return int(number)


__all__ = ["AnyAccounts", "FakeDispatcher", "SentJob"]
