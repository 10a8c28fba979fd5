"""The producer API: what a Django or Flask app calls.

``send_template`` / ``send_content`` validate everything, store the job and its
recipients in Redis, and enqueue ONE small task carrying only the job id;
``status`` reads a job's funnel. Nothing personal travels through the broker.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog

from dispatcher import jobs, pauses
from dispatcher.balances import BalanceCache
from dispatcher.config.accounts import Accounts
from dispatcher.config.settings import Settings
from dispatcher.deliveries import Delivery
from dispatcher.enqueue import Enqueuer
from dispatcher.errors import ConfigurationError, InsufficientBalanceError, Problem, ValidationError
from dispatcher.estimates import UNKNOWN, BalanceReading, Estimate, estimate_of, shortfall
from dispatcher.ledger import COUNTERS, as_text
from dispatcher.providers import registry
from dispatcher.providers.base import system_clock_ms
from dispatcher.receipts import read_uplinks
from dispatcher.records import RecordReader, lookup_records
from dispatcher.routes import REROUTED_CODE, Route, RouteEntry, split
from dispatcher.runtime import Runtime
from dispatcher.suppression import MemorySuppressions, SuppressionStore, check_phones
from dispatcher.template_audits import Audit, read_audit
from dispatcher.templates import Template
from dispatcher.validation import MAX_PARAM_CHARS, Checker

log = structlog.get_logger("dispatcher.producer")


@dataclass(frozen=True, slots=True)
class JobHandle:
    """A stored job. ``invalid`` lists recipients skipped (``skip_invalid=True``).

    ``total`` counts every recipient stored, ``suppressed`` those of them on the account's
    suppression list, which are recorded ``suppressed`` and never sent; ``chunks`` counts the
    chunks to send. ``queued`` is False when the job was stored but the broker did not take its
    fan-out task: it is sent anyway, by the orphan sweep within
    ``SMSD_ORPHAN_AFTER_S``. Do not send it again (that would send it twice).
    """

    job_id: str
    provider: str
    account: str
    total: int
    chunks: int
    duplicates: int = 0
    invalid: tuple[Problem, ...] = field(default=(), repr=False)
    queued: bool = True
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class RouteHandle:
    """A route send (:meth:`Producer.send`): ``job_id`` names the whole send (``status(job_id)``
    sums its jobs), ``jobs`` the job stored on each account, in the route's order."""

    job_id: str
    route: str
    jobs: tuple[JobHandle, ...]
    duplicates: int = 0
    invalid: tuple[Problem, ...] = field(default=(), repr=False)

    @property
    def total(self) -> int:
        """Every recipient stored, on every account."""
        return sum(j.total for j in self.jobs)

    @property
    def suppressed(self) -> int:
        """Recipients set aside as on their account's suppression list."""
        return sum(j.suppressed for j in self.jobs)

    @property
    def queued(self) -> bool:
        """Whether the broker took every job's fan-out (see :attr:`JobHandle.queued`)."""
        return all(j.queued for j in self.jobs)


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's funnel: recipients per state (:data:`~dispatcher.deliveries.STATES`), and with
    ``phones=True`` every recipient's record. ``tag`` is the caller's bid / sms_id;
    ``cancelled`` whether the job was cancelled. ``counts["suppressed"]``: recipients skipped
    at store time as on the account's suppression list (final, never sent)."""

    job_id: str
    kind: str
    provider: str
    account: str
    total: int
    counts: dict[str, int]
    paused: str | None = None
    phones: list[Delivery] | None = field(default=None, repr=False)
    tag: str = ""
    cancelled: bool = False

    @property
    def finished(self) -> bool:
        """Whether every recipient has reached a terminal state."""
        c = self.counts
        return c["pending"] + c["sending"] + c["accepted"] == 0

    @property
    def submitted(self) -> bool:
        """Whether no recipient is still waiting to be submitted or in flight."""
        return self.counts["pending"] + self.counts["sending"] == 0


def _ms(send_at: dt.datetime | int | None) -> int | None:
    if isinstance(send_at, dt.datetime):
        if send_at.tzinfo is None:
            send_at = send_at.astimezone()
        return int(send_at.timestamp() * 1000)
    return send_at


def check_send(accounts: Accounts, form: str, account: str, *, send_at: dt.datetime | int | None = None,
               **arguments: Any) -> tuple[jobs.JobSpec, int]:
    """What ``send_<form>(account, **arguments)`` checks before storing anything: ``(job, chunk size)``.

    The account first (``ConfigurationError`` if the gateway serving ``form`` has no
    such account), then the job, by that gateway's plug (``ValidationError`` listing
    every problem). Shared with :class:`dispatcher.testing.FakeDispatcher`, so an
    app's tests meet the same refusals. Raises ``ValidationError`` naming ``send``
    for a form no gateway serves.
    """
    try:
        plug, check = registry.send_check(form)
    except KeyError:
        raise ValidationError([Problem("send", f"must be one of {list(registry.send_forms())}, got {form!r}")]) \
            from None
    return check(accounts.get(plug.name, account), send_at_ms=_ms(send_at), **arguments)


def _match(check: Checker, tpl: Template, given: Any, values: list[str], field: str) -> None:
    """Check one set of values against a route template: one per variable, each within its ``maxLen``."""
    if isinstance(given, str) or not isinstance(given, Sequence):
        return  # not a list: already refused as such
    wrong_count = tpl.count_problem(len(given))
    if wrong_count:
        check.add(field, wrong_count)
    elif len(values) == len(given):
        for index, message in tpl.problems(values):
            if index is not None:
                check.add(f"{field}[{index}]", message)


#: Arguments of ``send_*`` that do not shape the job: ``estimate`` accepts and ignores them.
_SEND_ONLY = ("force", "progress")


class Producer:
    """The sending half of the producer API: the checks, then :meth:`_take` for a job that passed them.

    Shared by :class:`Dispatcher` (which stores and queues) and
    :class:`dispatcher.testing.FakeDispatcher` (which records), so an app's
    tests meet the same signatures and the same refusals as production.
    """

    accounts: Accounts
    #: Where the suppression lists live (Redis, or memory in the fake).
    suppressions: SuppressionStore | MemorySuppressions

    def send_template(
        self,
        account: str,
        *,
        template_code: str,
        phones: Iterable[Any] | None = None,
        params: Sequence[Any] | None = None,
        recipients: Iterable[tuple[Any, Sequence[Any]]] | None = None,
        bid: str | None = None,
        extend_code: str | None = None,
        priority: str = "bulk",
        send_at: dt.datetime | int | None = None,
        skip_invalid: bool = False,
        progress: Callable[[int], None] | None = None,
        force: bool = False,
    ) -> JobHandle:
        """Queue opass template SMS: ``phones`` + ``params`` (same for all) or ``recipients``.

        Raises ``ValidationError`` (nothing stored or queued) listing every bad
        field and item, ``ConfigurationError`` for an unknown account,
        ``InsufficientBalanceError`` (nothing stored or queued) when the job needs more
        messages than the account's last known balance (``force=True`` sends anyway), or
        ``StorageFullError`` (nothing stored or queued) when Redis is full. With
        ``skip_invalid`` bad phones are left out and listed in the handle instead.
        """
        return self.submit(
            "template", account, template_code=template_code, phones=phones, params=params,
            recipients=recipients, bid=bid, extend_code=extend_code, priority=priority, send_at=send_at,
            skip_invalid=skip_invalid,
            progress=progress, force=force,
        )

    def send_content(
        self,
        account: str,
        *,
        content: str | None = None,
        phones: Iterable[Any] | None = None,
        recipients: Iterable[tuple[Any, str]] | None = None,
        sms_id: str | None = None,
        sub_code: str | None = None,
        priority: str = "bulk",
        send_at: dt.datetime | int | None = None,
        skip_invalid: bool = False,
        progress: Callable[[int], None] | None = None,
        force: bool = False,
    ) -> JobHandle:
        """Queue aiofish free-content SMS: ``phones`` + ``content`` or per-phone ``recipients``.

        Raises ``ValidationError``, ``InsufficientBalanceError`` (unless ``force=True``) or
        ``StorageFullError`` (nothing stored or queued in each case) or ``ConfigurationError``.
        """
        return self.submit(
            "content", account, content=content, phones=phones, recipients=recipients, sms_id=sms_id,
            sub_code=sub_code, priority=priority, send_at=send_at, skip_invalid=skip_invalid,
            progress=progress, force=force,
        )

    def send_international(
        self,
        account: str,
        *,
        content: str,
        phones: Iterable[Any],
        uuid: str | None = None,
        priority: str = "bulk",
        send_at: dt.datetime | int | None = None,
        skip_invalid: bool = False,
        force: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> JobHandle:
        """Queue aiofish international SMS (isms): ``content`` to numbers with their country code.

        Numbers may be written ``+85291234567``, ``0085291234567`` or ``85291234567``
        (kept as digits); the text needs no 【signature】 and is billed by the GSM-7 rules
        (160/153 a part, else 70/67). ``uuid`` is kept as the job's tag. Sent in calls of
        up to 1000 numbers. Raises ``ValidationError`` naming ``phones[i]`` (nothing stored),
        ``InsufficientBalanceError`` (unless ``force=True``), ``StorageFullError`` or
        ``ConfigurationError`` (an account without ``app_key``/``app_secret`` fails at send).
        """
        return self.submit(
            "international", account, content=content, phones=phones, uuid=uuid, priority=priority,
            send_at=send_at, skip_invalid=skip_invalid,
            progress=progress, force=force,
        )

    def send_video(
        self,
        account: str,
        *,
        template_id: str,
        phones: Iterable[Any] | None = None,
        recipients: Iterable[tuple[Any, Sequence[Any]]] | None = None,
        uuid: str | None = None,
        priority: str = "bulk",
        send_at: dt.datetime | int | None = None,
        skip_invalid: bool = False,
        progress: Callable[[int], None] | None = None,
        force: bool = False,
    ) -> JobHandle:
        """Queue aiofish video SMS of an audited template: ``phones`` (the template as it is) or
        ``recipients`` ``[(phone, [value, …]), …]`` filling ``#p_1#``..``#p_5#`` (≤ 15 characters each).

        ``uuid`` is kept as the job's tag (each chunk goes out with its own id, which
        receipts are matched by). Raises ``ValidationError`` naming ``template_id`` when
        the template is known to be pending or rejected in audit (an audit push or
        ``sms-dispatch vsms status`` told us; a template never seen goes out and the
        gateway decides), and as :meth:`send_content` does; nothing is stored or queued then.
        """
        return self.submit(
            "video", account, template_id=template_id, phones=phones, recipients=recipients, uuid=uuid,
            priority=priority, send_at=send_at, skip_invalid=skip_invalid,
            progress=progress, force=force,
        )

    def submit(self, form: str, account: str, *, progress: Callable[[int], None] | None = None,
               force: bool = False, **arguments: Any) -> JobHandle:
        """Queue a send of any form a gateway serves: ``send_template(a, **kw)`` is ``submit("template", a, **kw)``.

        A gateway plugged in beside opass and aiofish is sent through here with its own
        form (its plug's ``sends``). ``arguments`` are that form's keyword arguments.
        Raises what ``send_template`` raises, and ``ValidationError`` naming ``send`` for
        a form no gateway serves, or ``template_id`` for a template known to be pending or
        rejected in audit.
        """
        spec, chunk_size = check_send(self.accounts, form, account, **arguments)
        template_id = spec.meta.get("template_id")
        if template_id:
            audit = self._template_audit(spec.provider, account, template_id)
            if audit is not None and audit.refusal:
                raise ValidationError([Problem("template_id", audit.refusal)])
        return self._send(spec, chunk_size, progress, force)

    def send(
        self,
        route: str,
        *,
        template: str,
        params: Sequence[Any] | None = None,
        phones: Iterable[Any] | None = None,
        recipients: Iterable[tuple[Any, Sequence[Any]]] | None = None,
        priority: str = "bulk",
        send_at: dt.datetime | int | None = None,
        skip_invalid: bool = False,
        progress: Callable[[int], None] | None = None,
        force: bool = False,
    ) -> RouteHandle:
        """Queue ``template`` (a name of the accounts file's ``templates``) through route ``route``:
        ``phones`` + ``params`` (the same values for all) or ``recipients`` ``[(phone, [value, …]), …]``.

        Recipients are split by the weights of the route's accounts not paused or failing, in the
        route's order (:func:`dispatcher.routes.split`), one job per account, each in its gateway's
        own form (``Gateway.route``). Everything is checked before anything is stored: raises
        ``ConfigurationError`` (an unknown route, an account that cannot send the template),
        ``ValidationError`` listing every problem (values against the template's variables, and
        each account's own checks), ``InsufficientBalanceError`` (unless ``force=True``) or
        ``StorageFullError``. ``status(handle.job_id)`` sums the jobs, each recipient counted where
        it is now (a recipient moved by the failover counts once, on the account it moved to).
        """
        chosen = self.accounts.route(route)
        tpl = self.accounts.templates.get(template) if isinstance(template, str) else None
        check = Checker()
        if tpl is None:
            check.add("template", f"must be one of {sorted(self.accounts.templates)}, got {template!r}")
            check.done()
        assert tpl is not None
        same: list[str] | None = None
        if recipients is None:
            same = check.params(params or [], field="params", max_chars=MAX_PARAM_CHARS)
            _match(check, tpl, params or [], same, "params")
        elif params is not None:
            check.add("params", "give params (same for all) or recipients (per phone), not both")

        def per_phone(values: Any, where: str) -> list[str]:
            got = check.params(values, field=f"{where}.params", max_chars=MAX_PARAM_CHARS)
            _match(check, tpl, values, got, f"{where}.params")
            return got

        numbers, values, dups, skipped = jobs.recipients(
            check, phones, recipients, per_phone if recipients is not None else None, skip_invalid)
        check.done()
        up = [e for e in chosen.entries if not self._is_paused(e.provider, e.account)] or list(chosen.entries)
        route_id = secrets.token_hex(8)
        specs = []
        start = 0
        for entry, share in zip(up, split(len(numbers), [e.weight for e in up]), strict=True):
            part = slice(start, start + share)
            start += share
            if share:
                specs.append(self.route_spec(entry, tpl, numbers[part], same, values[part] if values else None,
                                             route_id=route_id, priority=priority, send_at=send_at))
        specs = [(self._without_suppressed(spec), size) for spec, size in specs]
        if not force:
            for spec, _ in specs:
                if spec.phones:
                    self._guard(spec)
        self._keep_route(route_id, chosen, tpl, same, dict(zip(numbers, values, strict=True)) if values else None,
                         priority=priority, send_at_ms=_ms(send_at))
        handles = []
        for spec, size in specs:
            handle = self._take(spec, size, progress)
            self._add_route_job(route_id, handle)
            handles.append(handle)
        log.info("route.sent", route=chosen.name, route_job=route_id, jobs=[h.job_id for h in handles],
                 recipients=len(numbers))
        return RouteHandle(route_id, chosen.name, tuple(handles), dups, tuple(skipped))

    def route_spec(self, entry: RouteEntry, tpl: Template, phones: list[str], same: list[str] | None,
                   values: Sequence[list[str]] | None, *, route_id: str, priority: str,
                   send_at: dt.datetime | int | None) -> tuple[jobs.JobSpec, int]:
        """The job ``entry``'s account sends for these phones of a route send (its gateway's own form,
        checked as its ``send_<form>`` checks it): ``(job, chunk size)``. Raises ``ConfigurationError``
        (the account cannot send the template) or ``ValidationError``."""
        form = registry.gateway(entry.provider).route
        if form is None:
            raise ConfigurationError(f"{entry.key} cannot be in a route")
        routed = form(self.accounts.get(entry.provider, entry.account), tpl, entry.options)
        arguments: dict[str, Any] = dict(routed.arguments)
        if values is None:
            arguments.update(routed.same(same or []), phones=phones)
        else:
            arguments["recipients"] = [(p, routed.each(v)) for p, v in zip(phones, values, strict=True)]
        spec, size = check_send(self.accounts, routed.form, entry.account, priority=priority, send_at=send_at,
                                **arguments)
        spec.meta["route"] = route_id
        return spec, size

    def _is_paused(self, provider: str, account: str) -> bool:
        """Whether the account is paused or failing (a route send leaves it out); a subclass knows."""
        del provider, account
        return False

    def _keep_route(self, route_id: str, route: Route, tpl: Template, same: list[str] | None,
                    values: dict[str, list[str]] | None, *, priority: str, send_at_ms: int | None) -> None:
        """Keep what a failover needs to send a route send's recipients again; nothing unless a subclass does."""
        del route_id, route, tpl, same, values, priority, send_at_ms

    def _add_route_job(self, route_id: str, handle: JobHandle, moved: int = 0) -> None:
        """Note a job of a route send (holding ``moved`` recipients the failover moved); nothing unless a
        subclass keeps them."""
        del route_id, handle, moved

    def _template_audit(self, provider: str, account: str, tpl_id: str) -> Audit | None:
        """The template's last known audit result; none known unless a subclass knows better."""
        del provider, account, tpl_id
        return None

    def estimate(self, send: str, account: str, **arguments: Any) -> Estimate:
        """What ``send_<send>(account, **arguments)`` would cost, without storing or queueing anything.

        ``send`` is ``"template"``, ``"content"``, ``"video"`` or ``"international"`` (the gateways'
        send forms, :func:`dispatcher.providers.registry.send_forms`); ``arguments`` are
        that call's keyword arguments (``force`` and ``progress`` are ignored), checked as it
        checks them (``ValidationError``, ``ConfigurationError``). Returns recipients, billable
        segments and the account's last known balance (read from the gateway if none is
        cached and its ``balance`` limit has a slot free). Pass phones as a list, not a
        generator, to send them after estimating.
        """
        shaping = {k: v for k, v in arguments.items() if k not in _SEND_ONLY}
        spec, _ = check_send(self.accounts, send, account, **shaping)
        return estimate_of(self.accounts, spec, self._balance(spec.provider, spec.account, ask_gateway=True))

    def _send(self, spec: jobs.JobSpec, chunk_size: int, progress: Callable[[int], None] | None,
              force: bool) -> JobHandle:
        """Set suppressed recipients aside, then the balance guard (on what will be sent), then :meth:`_take`."""
        spec = self._without_suppressed(spec)
        if not force and spec.phones:  # every recipient suppressed: nothing to pay for
            self._guard(spec)
        return self._take(spec, chunk_size, progress)

    def _without_suppressed(self, spec: jobs.JobSpec) -> jobs.JobSpec:
        """The job with the recipients on its account's suppression list moved to ``spec.suppressed``
        (a bulk job; an OTP only if the account's ``unsubscribe.otp`` says so)."""
        rules = self.accounts.get(spec.provider, spec.account).unsubscribe
        if not rules.applies_to(spec.meta["priority"]):
            return spec
        flags = self.suppressions.flags(spec.provider, spec.account, spec.phones)
        if not flags or not any(flags):
            return spec
        log.info("send.suppressed", provider=spec.provider, account=spec.account, recipients=sum(flags))
        return spec.without(flags)

    # -- suppression lists ------------------------------------------------------------------------------

    def suppress(self, provider: str, account: str, phones: str | Iterable[Any]) -> int:
        """Put ``phones`` (one, or many) on the suppression list of ``provider:account``; return how many
        were not on it. Bulk jobs stored from now on skip them (:mod:`dispatcher.suppression`).

        A channel sharing another gateway's accounts shares that entry's list (``aiofish-vsms:a``
        is ``aiofish:a``'s). Raises ``ConfigurationError`` for an unknown account and
        ``ValidationError`` naming each ``phones[i]`` that is no number (nothing is added then).
        """
        self.accounts.get(provider, account)
        listed = check_phones(phones)
        added = self.suppressions.add(provider, account, listed)
        log.info("suppression.added", provider=provider, account=account, phones=added)
        return added

    def unsuppress(self, provider: str, account: str, phones: str | Iterable[Any]) -> int:
        """Take ``phones`` off the account's suppression list; return how many were on it.

        Raises as :meth:`suppress` does.
        """
        self.accounts.get(provider, account)
        listed = check_phones(phones)
        removed = self.suppressions.remove(provider, account, listed)
        log.info("suppression.removed", provider=provider, account=account, phones=removed)
        return removed

    def is_suppressed(self, provider: str, account: str, phone: str) -> bool:
        """Whether ``phone`` is on the suppression list of ``provider:account``.

        Raises ``ConfigurationError`` for an unknown account, ``ValidationError`` for no number.
        """
        self.accounts.get(provider, account)
        return self.suppressions.contains(provider, account, check_phones(phone)[0])

    def suppression_list(self, provider: str, account: str) -> Iterator[str]:
        """Every phone on the account's suppression list, in no particular order (read in pieces).

        Raises ``ConfigurationError`` for an unknown account.
        """
        self.accounts.get(provider, account)
        return self.suppressions.members(provider, account)

    def suppression_count(self, provider: str, account: str) -> int:
        """How many phones the account's suppression list holds. Raises ``ConfigurationError``."""
        self.accounts.get(provider, account)
        return self.suppressions.count(provider, account)

    def _guard(self, spec: jobs.JobSpec) -> None:
        """Raise ``InsufficientBalanceError`` if the job's segments exceed the account's known balance.

        An OTP never waits for the gateway: it is checked against a cached balance only
        (one Redis GET), and goes out unchecked when none is cached. A bulk job reads the
        balance when none is cached. An unknown balance (no slot in the ``balance`` limit,
        gateway down) lets the job through: a guard that fails must not stop sending.
        A cached balance that looks short is read again (when the limit allows) before
        refusing, so a top-up is seen without waiting for the cache to expire. A channel
        whose plug has no balance query is not checked.
        """
        if not registry.gateway(spec.provider).has_balance:
            return  # nothing to check against (video and international SMS): not worth a warning each send
        bulk = spec.meta["priority"] != "otp"
        reading = self._balance(spec.provider, spec.account, ask_gateway=bulk)
        estimate = estimate_of(self.accounts, spec, reading)
        if shortfall(estimate) and reading.cached:
            fresh = self._balance(spec.provider, spec.account, ask_gateway=True, fresh=True)
            if fresh.remaining is not None:
                estimate = estimate_of(self.accounts, spec, fresh)
        if shortfall(estimate):
            raise InsufficientBalanceError(account=f"{spec.provider}:{spec.account}", needed=estimate.segments,
                                           available=estimate.balance or 0, age_s=estimate.balance_age_s or 0.0)
        if estimate.balance is None and bulk:
            log.warning("send.balance_unknown", provider=spec.provider, account=spec.account,
                        segments=estimate.segments, reason=estimate.balance_note)

    def _balance(self, provider: str, account: str, *, ask_gateway: bool, fresh: bool = False) -> BalanceReading:
        """The account's balance as known (``fresh``: bypass any cache); unknown unless a subclass knows better."""
        del provider, account, ask_gateway, fresh
        return UNKNOWN

    def _take(self, spec: jobs.JobSpec, chunk_size: int, progress: Callable[[int], None] | None) -> JobHandle:
        """Do what the producer does with a valid job; returns its handle."""
        raise NotImplementedError


class Dispatcher(Producer):
    """Entry point for producers; one per process is enough (it is thread-safe)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        accounts: Accounts | None = None,
        client: redis.Redis | None = None,
        enqueue: Callable[[str, str, int], None] | None = None,
        clock_ms: Callable[[], int] = system_clock_ms,
    ) -> None:
        rt = Runtime(settings, accounts=accounts, client=client)
        self._rt = rt
        self.settings, self.accounts, self.redis = rt.settings, rt.accounts, rt.redis
        self.keys, self.ledger = rt.keys, rt.ledger
        # Chunks re-queued by a resume go through the same broker client as the fan-outs.
        self._enqueuer = Enqueuer(self.settings)
        self._enqueue = enqueue or self._enqueuer
        self.records = RecordReader(self.ledger)
        self._clock_ms = clock_ms
        self._balances = BalanceCache(rt, clock_ms)
        self.suppressions = SuppressionStore(self.redis, self.keys)

    def _balance(self, provider: str, account: str, *, ask_gateway: bool, fresh: bool = False) -> BalanceReading:
        """From the Redis cache, else the gateway within the ``balance`` limit (:mod:`dispatcher.balances`)."""
        if fresh:
            return self._balances.read(provider, account)
        return self._balances.reading(provider, account, ask_gateway=ask_gateway)

    @property
    def runtime(self) -> Runtime:
        """The runtime this dispatcher sends through (its accounts, Redis, gateway clients)."""
        return self._rt

    def _template_audit(self, provider: str, account: str, tpl_id: str) -> Audit | None:
        """From Redis, where audit pushes and ``sms-dispatch vsms status`` keep it."""
        return read_audit(self.redis, self.keys, provider, account, tpl_id)

    def _take(self, spec: jobs.JobSpec, chunk_size: int, progress: Callable[[int], None] | None) -> JobHandle:
        job_id = secrets.token_hex(8)
        now = self._clock_ms()
        send_at = int(spec.meta["send_at_ms"])
        chunks = self.ledger.create_job(job_id, spec.meta, spec.chunks(chunk_size), now_ms=now, progress=progress,
                                        due_ms=send_at if send_at > now else None,
                                        suppressed=spec.suppressed_chunks(chunk_size))
        queue = self.settings.queue_otp if spec.meta["priority"] == "otp" else self.settings.queue_bulk
        queued = True
        if send_at <= now and chunks:  # else create_job scheduled it, or there is nothing to send
            try:
                self._enqueue(job_id, queue, 0)
            except Exception as exc:  # noqa: BLE001 - stored is what counts: raising would invite a second send
                # Its chunks are pending with a due time, so the orphan sweep
                # queues them; an error here would make the caller retry and
                # the job go out twice.
                queued = False
                log.warning("job.enqueue_failed", job_id=job_id, queue=queue, error=type(exc).__name__,
                            sweep_after_s=self.settings.orphan_after_s)
        return JobHandle(job_id, spec.provider, spec.account, len(spec.phones) + len(spec.suppressed), chunks,
                         spec.duplicates, spec.invalid, queued, len(spec.suppressed))

    def _is_paused(self, provider: str, account: str) -> bool:
        # A failing account (dispatcher.account_health) is left out of a route send like a paused one.
        return bool(self.redis.exists(self.keys.paused(provider, account), self.keys.failing(provider, account)))

    def _route_ttl_s(self, send_at_ms: int | None) -> int:
        """A route send's record lives as long as its jobs' hashes (a scheduled one from its send time)."""
        delay_s = max(0, ((send_at_ms or 0) - self._clock_ms()) // 1000)
        return self.ledger.job_ttl_s + self.ledger.job_hash_grace_s + delay_s

    def _keep_route(self, route_id: str, route: Route, tpl: Template, same: list[str] | None,
                    values: dict[str, list[str]] | None, *, priority: str, send_at_ms: int | None) -> None:
        """``P:route:{id}`` (and ``:v``, the values per phone) and the id in ``P:routes``, before any job."""
        ttl_s = self._route_ttl_s(send_at_ms)
        key = self.keys.route_job(route_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(key, mapping={"route": route.name, "template": tpl.code, "priority": priority,
                                "send_at_ms": send_at_ms or 0, "created_ms": self._clock_ms(),
                                "params": json.dumps(same, ensure_ascii=False) if values is None else ""})
        pipe.expire(key, ttl_s)
        if values:
            items = list(values.items())
            for start in range(0, len(items), 1000):
                part = items[start : start + 1000]
                pipe.hset(self.keys.route_values(route_id),
                          mapping={p: json.dumps(v, ensure_ascii=False, separators=(",", ":")) for p, v in part})
                if (start // 1000) % 50 == 49:  # 50,000 phones a round trip
                    pipe.execute()
            pipe.expire(self.keys.route_values(route_id), ttl_s)
        pipe.zadd(self.keys.route_jobs(), {route_id: self._clock_ms() + ttl_s * 1000})
        pipe.execute()

    def _add_route_job(self, route_id: str, handle: JobHandle, moved: int = 0) -> None:
        self.ledger.routed_moved(route_id, handle.job_id, f"{handle.provider}:{handle.account}", moved)

    def take_routed(self, route_id: str, spec: jobs.JobSpec, chunk_size: int) -> JobHandle:
        """Store and queue a route send's recipients moved by its failover (:mod:`dispatcher.route_failover`):
        suppression applies, the balance guard does not (the gateway's answer pauses a short account,
        and its recipients move on), and the job is noted in the route send."""
        handle = self._take(self._without_suppressed(spec), chunk_size, None)
        self._add_route_job(route_id, handle, moved=handle.total)
        return handle

    def failing(self, provider: str, account: str) -> str | None:
        """Why a worker marked the account failing (its error rate, :mod:`dispatcher.account_health`), or
        ``None``: a route moves a failing account's recipients on as it does a paused one's."""
        reason = self.redis.get(self.keys.failing(provider, account))
        return as_text(reason) if reason is not None else None

    def route_jobs(self, route_id: str) -> dict[str, str]:
        """The jobs a route send stored, failovers' included: job id → ``provider:account``, oldest first.

        Raises ``KeyError`` for an unknown (or expired) route send.
        """
        fields = {as_text(k): as_text(v) for k, v in self.redis.hgetall(self.keys.route_job(route_id)).items()}
        if not fields:
            raise KeyError(f"no route send {route_id}")
        return {k[2:]: v for k, v in fields.items() if k.startswith("j:")}

    def _route_status(self, route_id: str, phones: bool) -> JobStatus:
        """A route send's funnel: its jobs' counts summed in one consistent read, a recipient moved by
        the failover counted once, where it is now (its ``cancelled`` record on the account it left is
        not counted; while it is being stored on the next account it counts as ``pending``)."""
        route, found = self.ledger.route_counters(route_id, ["total", "c:rerouted", *(f"c:{c}" for c in COUNTERS)])
        if not route:
            raise KeyError(f"no job {route_id}")
        moving = int(route.get("moving", 0))
        counts = dict.fromkeys(COUNTERS, 0)
        counts["pending"] = moving
        total = moving
        for total_of, moved, *values in found.values():
            total += total_of - moved
            for c, v in zip(COUNTERS, values, strict=True):
                counts[c] += v
            counts["cancelled"] -= moved
        records: list[Delivery] = []
        if phones:
            records = [d for job_id in found for d in self.records.job_records(job_id) if d.code != REROUTED_CODE]
        return JobStatus(route_id, "route", "", route.get("route", ""), total, counts, None,
                         records if phones else None)

    def status(self, job_id: str, *, phones: bool = False) -> JobStatus:
        """The job's funnel; with ``phones=True`` also every recipient's :class:`Delivery` record.

        For a route send's id (:meth:`send`), its jobs' funnels summed (``kind`` ``"route"``,
        ``account`` the route's name), each recipient counted once, where it is now.
        Raises ``KeyError`` for an unknown (or expired) job.
        """
        job = self.ledger.job(job_id)
        if not job:
            if self.redis.exists(self.keys.route_job(job_id)):
                return self._route_status(job_id, phones)
            raise KeyError(f"no job {job_id}")
        counts = {c: int(job.get(f"c:{c}", 0)) for c in COUNTERS}
        paused = self.redis.get(self.keys.paused(job["provider"], job["account"]))
        return JobStatus(
            job_id, job["kind"], job["provider"], job["account"], int(job["total"]), counts,
            as_text(paused) if paused else None,
            list(self.records.job_records(job_id)) if phones else None,
            tag=job.get("tag", ""), cancelled="cancel" in job,
        )

    def lookup(self, *, message_id: str | None = None, phone: str | None = None, provider: str | None = None,
               limit: int = 100) -> list[Delivery]:
        """Every recipient record still kept with this vendor ``message_id`` or this ``phone``, newest first.

        Exactly one of ``message_id`` / ``phone`` is given; ``provider`` narrows
        the search to one gateway. Raises ``ValidationError`` for a phone that is
        not a mainland mobile number or when neither or both keys are given.
        """
        return lookup_records(self.records, message_id=message_id, phone=phone, provider=provider, limit=limit,
                              now_ms=self._clock_ms())

    def outcomes(self, cursor: str = "0", *, limit: int = 1000,
                 block_ms: int | None = None) -> tuple[list[Delivery], str]:
        """Final outcomes recorded after ``cursor``, oldest first, and the cursor to pass next time.

        ``"0"`` starts at the oldest outcome kept (the feed keeps the newest
        ``SMSD_OUTCOME_FEED_MAX`` changes); ``"$"`` starts at the next one.
        With ``block_ms`` waits up to that long when nothing is new. Any number
        of readers, each with its own cursor. Raises ``ValueError`` for a cursor
        this method did not return.
        """
        return self.records.feed(cursor, limit=max(1, limit), block_ms=block_ms)

    def cancel(self, job_id: str) -> int:
        """Cancel every recipient of the job not yet submitted; return how many became ``cancelled``.

        A scheduled job never goes out; chunks in flight finish and are
        recorded as they end; a second cancel returns 0. Raises ``KeyError``
        for an unknown (or expired) job.
        """
        count = self.ledger.cancel(job_id, now_ms=self._clock_ms())
        log.info("job.cancelled", job_id=job_id, recipients=count)
        return count

    def pause(self, provider: str, account: str, reason: str = pauses.DEFAULT_REASON) -> None:
        """Stop sending for account ``provider:account`` until :meth:`resume`.

        Its chunks stay ``pending`` (chunks already in a worker's hands finish);
        ``status`` shows ``paused`` as ``"operator: <reason>"``. Unlike a pause
        after an account-fatal answer, beat's balance check never lifts it.
        Raises ``ConfigurationError`` for an account that is not configured.
        """
        pauses.pause(self._rt, provider, account, reason)

    def resume(self, provider: str, account: str) -> int:
        """Lift the account's pause (an operator's or an account-fatal one); return the pending chunks re-queued.

        Raises ``ConfigurationError`` for an account that is not configured.
        """
        count = pauses.resume(self._rt, provider, account, self._enqueuer.send_chunk)
        return count or 0

    def uplinks(self, provider: str, account: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest replies (MO) received for an account: ``{phone, content, ext, at_ms, message_id}``."""
        return read_uplinks(self.redis, self.keys, provider, account, limit)
