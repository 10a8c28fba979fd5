"""Prometheus counters and histograms of what a process sees happen, and the rules for their labels.

Counted where it happens: gateway calls and rate-limit waits in the worker's pool
processes, receipts recorded by the webhook and the polls, receipts applied by the
worker's applier thread, answers by the webhook. With ``PROMETHEUS_MULTIPROC_DIR``
set (before the process starts), prometheus_client keeps each process's values in a
file of that directory and one scrape sums every process's (:mod:`dispatcher.metrics_export`);
without it they stay in the process, in :data:`REGISTRY`. What lives in Redis (recipients
by state, jobs in flight, paused accounts) is read at scrape time instead
(:class:`dispatcher.metrics_export.LedgerCollector`): one count, never a per-process copy that drifts.

Labels never hold a phone, a message text or a secret, and each takes few values:
``provider`` and ``account`` come from a job's meta or a verified hook (configured
names); ``outcome`` is an error class; ``code`` is a code of the gateway's own table
(:attr:`~dispatcher.providers.registry.Gateway.codes`), one of ours, or ``other``;
``source``, ``result``, ``op``, ``route`` and ``status`` are fixed words (:func:`code_label`
and the other ``*_label`` functions, pure, make sure).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    ConfigurationError,
    RecipientRejectedError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
    ValidationError,
)
from dispatcher.providers import registry as gateways

# In multiprocess mode the first value counted opens a file in the directory: a process
# started before its service created it (a CLI command that takes a rate-limit slot)
# would fail on that write instead of counting.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

#: The process's own metrics (not prometheus_client's default registry, so an app that
#: imports the producer API and exports its own metrics does not export ours too).
REGISTRY = CollectorRegistry(auto_describe=True)

#: Outcome class of a gateway call: the error class it raised (subclasses first).
OUTCOMES: tuple[tuple[type[Exception], str], ...] = (
    (ThrottledError, "throttled"),
    (TransientError, "transient"),
    (AmbiguousError, "ambiguous"),
    (AccountFatalError, "account_fatal"),
    (RequestRejectedError, "request_rejected"),
    (RecipientRejectedError, "recipient_rejected"),
    (ValidationError, "invalid"),
    (ConfigurationError, "configuration"),
)
ACCEPTED = "accepted"
#: Codes of ours that may stand where a vendor code does (an error with no vendor code is
#: named by its class, as the ledger records it).
OWN_CODES = frozenset(cls.__name__ for cls, _ in OUTCOMES) | {"ok", "none"}
OTHER = "other"
SOURCES = frozenset({"push", "pull", "query"})
#: Words a pause reason is classified into besides a gateway code.
OPERATOR = "operator"

#: Seconds; a gateway answers in tens of milliseconds, a timeout takes its read timeout.
REQUEST_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Seconds; 0 (a slot due at once) is its own bucket, and the limiter reserves up to SMSD_LIMITER_MAX_WAIT_S.
WAIT_BUCKETS_S = (0.0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Seconds; a vendor waits at most 1 s for the webhook's answer (opass stops pushing after three slower).
ANSWER_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

GATEWAY_REQUESTS = Counter(
    "smsd_gateway_requests", "Gateway send calls by outcome class and vendor code",
    ["provider", "account", "outcome", "code"], registry=REGISTRY)
GATEWAY_RECIPIENTS = Counter(
    "smsd_gateway_recipients", "Recipients carried by gateway send calls, by the call's outcome class",
    ["provider", "account", "outcome"], registry=REGISTRY)
GATEWAY_SECONDS = Histogram(
    "smsd_gateway_request_seconds", "Time a gateway send call took, answer or error",
    ["provider", "account", "outcome"], buckets=REQUEST_BUCKETS_S, registry=REGISTRY)
LIMITER_WAIT = Histogram(
    "smsd_limiter_wait_seconds", "Wait from taking a rate-limit slot to its time; the count is the slots used",
    ["provider", "account", "op"], buckets=WAIT_BUCKETS_S, registry=REGISTRY)
RECEIPTS_RECORDED = Counter(
    "smsd_receipts_recorded", "Receipts put on the receipt stream, by where they came from",
    ["provider", "account", "source"], registry=REGISTRY)
RECEIPTS_APPLIED = Counter(
    "smsd_receipts_applied",
    "Receipts taken off the receipt stream: applied, duplicate (nothing left to change), refused "
    "(not evidence: another account's job, an attempt never sent) or unmatched (no id of ours)",
    ["provider", "account", "source", "result"], registry=REGISTRY)
WEBHOOK_ANSWERS = Histogram(
    "smsd_webhook_answer_seconds", "Time the webhook took to answer, by route, gateway and HTTP status",
    ["route", "provider", "status"], buckets=ANSWER_BUCKETS_S, registry=REGISTRY)


def outcome_label(exc: BaseException | None) -> str:
    """The outcome class of a gateway call that raised ``exc`` (``None``: accepted). Pure."""
    if exc is None:
        return ACCEPTED
    for cls, label in OUTCOMES:
        if isinstance(exc, cls):
            return label
    return "error"


def code_label(provider: str, code: object) -> str:
    """``code`` if the gateway's code table (or our own error names) has it, else ``other``; ``none``
    for no code. Pure: a gateway answering undocumented codes cannot grow the label's values."""
    if code is None or code == "":
        return "none"
    text = str(code).strip()
    if text in OWN_CODES:
        return text
    try:
        table: Mapping[str, Any] = gateways.gateway(provider).codes
    except ConfigurationError:
        return OTHER
    return text if text in table else OTHER


def provider_label(provider: str) -> str:
    """A provider name as a label: a registered gateway's, else ``other`` (a hook URL is anyone's to write). Pure."""
    return provider if provider in gateways.names() else OTHER


def source_label(source: str) -> str:
    """Where receipts came from: ``push``, ``pull``, ``query`` or ``other``. Pure."""
    return source if source in SOURCES else OTHER


def pause_reason_label(provider: str, reason: str | bytes | None) -> str:
    """A pause reason as a label: ``""`` (not paused), ``operator``, the gateway code it starts
    with (``40002: 余额不足`` → ``40002``) if that code is in the gateway's table or ours, else
    ``other``. Pure: the stored reason holds free text an operator or a vendor wrote."""
    if reason is None:
        return ""
    text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else reason
    if text.startswith(OPERATOR + ":"):
        return OPERATOR
    code = text.split(": ", 1)[0]
    label = code_label(provider, code)
    return OTHER if label == "none" else label


def gateway_call(job: Mapping[str, str], recipients: int, started_s: float, exc: BaseException | None,
                 code: object = None) -> None:
    """Count one gateway send call of ``job`` carrying ``recipients``, begun at ``started_s``
    (:func:`time.perf_counter`), that raised ``exc`` or was accepted with ``code``."""
    elapsed_s = time.perf_counter() - started_s
    provider, account = job.get("provider", ""), job.get("account", "")
    outcome = outcome_label(exc)
    if exc is not None:
        code = getattr(exc, "code", None) or type(exc).__name__
    key = (provider, account, outcome, code_label(provider, code or "ok"))
    children = _CALLS.get(key)
    if children is None:
        children = _CALLS[key] = (GATEWAY_REQUESTS.labels(*key), GATEWAY_RECIPIENTS.labels(*key[:3]),
                                  GATEWAY_SECONDS.labels(*key[:3]))
    requests, carried, seconds = children
    requests.inc()
    carried.inc(recipients)
    seconds.observe(elapsed_s)


def limiter_slot(provider: str, account: str, op: str, wait_s: float) -> None:
    """Count one rate-limit slot of ``op`` taken ``wait_s`` ahead of its time."""
    key = (provider, account, op)
    child = _SLOTS.get(key)
    if child is None:
        child = _SLOTS[key] = LIMITER_WAIT.labels(*key)
    child.observe(max(0.0, wait_s))


# The labelled children of the per-chunk calls, by their (bounded) label values: looking a child
# up by its labels costs a lock and a tuple check per call, about as much as counting itself.
_CALLS: dict[tuple[str, str, str, str], tuple[Any, Any, Any]] = {}
_SLOTS: dict[tuple[str, str, str], Any] = {}


def receipts_recorded(provider: str, account: str, source: str, count: int) -> None:
    """Count ``count`` receipts put on the receipt stream from ``source``."""
    if count:
        RECEIPTS_RECORDED.labels(provider, account, source_label(source)).inc(count)


def receipts_applied(owner: str, source: str, *, applied: int, ignored: int, refused: int, unmatched: int) -> None:
    """Count one apply call's receipts of ``owner`` (``provider:account``) that came from ``source``."""
    provider, _, account = owner.partition(":")
    source = source_label(source)
    for result, count in (("applied", applied), ("duplicate", ignored - refused), ("refused", refused),
                          ("unmatched", unmatched)):
        if count > 0:
            RECEIPTS_APPLIED.labels(provider, account, source, result).inc(count)


def webhook_answer(route: str, provider: str, status: str, elapsed_s: float) -> None:
    """Count one webhook answer (``status`` like ``200 OK``) to ``route`` that took ``elapsed_s``."""
    WEBHOOK_ANSWERS.labels(route, provider_label(provider) if route == "hook" else "-",
                           status.split(" ", 1)[0]).observe(elapsed_s)
