"""The metrics' labels: bounded, and never a phone, a text or a secret. Pure (the process's own registry).

These run without ``PROMETHEUS_MULTIPROC_DIR``, so what a call counts is read back from
:data:`dispatcher.metrics.REGISTRY` in this process.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from dispatcher import metrics
from dispatcher.errors import (
    AccountFatalError,
    AmbiguousError,
    RequestRejectedError,
    ThrottledError,
    TransientError,
)
from dispatcher.metrics_export import LEDGER_METRICS, prepare_dir, process_exited
from dispatcher.receipt_stream import Entry, plan_calls

PHONE = "13912345678"
SECRET = "s3cr3t-callback-token-0123456789"
JOB = {"provider": "opass", "account": "demo", "kind": "opass.send"}


def _labels() -> list[dict[str, str]]:
    """The label sets of every sample the process's registry holds now."""
    return [s.labels for family in metrics.REGISTRY.collect() for s in family.samples]


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(autouse=True)
def _process_local() -> None:
    """These tests read the in-process registry: no multiprocess directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        pytest.skip("PROMETHEUS_MULTIPROC_DIR is set: counters go to files, not to the registry read here")


def test_a_code_in_the_gateways_table_is_kept_and_any_other_becomes_other() -> None:
    """Codes of the plug's table (and our own error names) are labels; an undocumented code is 'other'."""
    assert metrics.code_label("opass", "40002") == "40002"
    assert metrics.code_label("aiofish", "p:010") == "p:010"
    assert metrics.code_label("opass", "AmbiguousError") == "AmbiguousError"
    assert metrics.code_label("opass", "40002x") == "other"
    assert metrics.code_label("opass", PHONE) == "other"
    assert metrics.code_label("no-such-gateway", "40002") == "other"
    assert metrics.code_label("opass", None) == "none"


def test_each_error_class_is_its_own_outcome() -> None:
    """The outcome label names what happens next: accepted, throttled, transient, ambiguous, fatal, rejected."""
    cases = {None: "accepted", ThrottledError("x", provider="p"): "throttled",
             TransientError("x", provider="p"): "transient", AmbiguousError("x", provider="p"): "ambiguous",
             AccountFatalError("x", provider="p"): "account_fatal",
             RequestRejectedError("x", provider="p"): "request_rejected", RuntimeError("bug"): "error"}
    assert {metrics.outcome_label(exc): label for exc, label in cases.items()} == {v: v for v in cases.values()}


def test_a_pause_reason_is_shown_by_its_class_never_its_text() -> None:
    """An operator's pause is 'operator', a fatal answer's is its code, free text is 'other', none is ''."""
    assert metrics.pause_reason_label("opass", "operator: call 13912345678 about it") == "operator"
    assert metrics.pause_reason_label("opass", b"40002: \xe4\xbd\x99\xe9\xa2\x9d\xe4\xb8\x8d\xe8\xb6\xb3") == "40002"
    assert metrics.pause_reason_label("aiofish", "p:004: 余额不足") == "p:004"
    assert metrics.pause_reason_label("opass", "ConfigurationError: bad key") == "ConfigurationError"
    assert metrics.pause_reason_label("opass", f"{PHONE}: whatever a vendor said") == "other"
    assert metrics.pause_reason_label("opass", None) == ""


def test_a_phone_or_secret_in_an_error_or_a_hook_url_never_becomes_a_label() -> None:
    """A vendor error whose code and text carry a phone, and a push to a hook path naming a phone and a
    secret, are counted under 'other' labels: no sample of the registry holds either string."""
    error = RequestRejectedError(f"refused {PHONE}", provider="opass", account="demo", code=PHONE)
    metrics.gateway_call(JOB, 1, 0.0, error)
    metrics.webhook_answer("hook", f"{PHONE}-{SECRET}", "404 Not Found", 0.001)
    assert _value("smsd_gateway_requests_total", provider="opass", account="demo", outcome="request_rejected",
                  code="other") >= 1
    assert _value("smsd_webhook_answer_seconds_count", route="hook", provider="other", status="404") >= 1
    leaked = [ls for ls in _labels() if any(PHONE in v or SECRET in v for v in ls.values())]
    assert leaked == []


def test_a_gateway_call_counts_the_request_its_recipients_and_its_time() -> None:
    """One accepted call of 7 recipients: one request (code 'ok'), 7 recipients, one latency observation."""
    job = {**JOB, "account": "counted"}
    metrics.gateway_call(job, 7, 0.0, None)
    assert _value("smsd_gateway_requests_total", provider="opass", account="counted", outcome="accepted",
                  code="ok") == 1
    assert _value("smsd_gateway_recipients_total", provider="opass", account="counted", outcome="accepted") == 7
    assert _value("smsd_gateway_request_seconds_count", provider="opass", account="counted", outcome="accepted") == 1


def test_receipts_taken_off_the_stream_are_counted_by_source_and_result() -> None:
    """Ignored receipts split into refused (not evidence) and duplicates; an unknown source is 'other'."""
    metrics.receipts_applied("opass:split", "push", applied=5, ignored=4, refused=1, unmatched=2)
    metrics.receipts_applied("opass:split", "carrier pigeon", applied=1, ignored=0, refused=0, unmatched=0)
    got = {r: _value("smsd_receipts_applied_total", provider="opass", account="split", source="push", result=r)
           for r in ("applied", "duplicate", "refused", "unmatched")}
    assert got == {"applied": 5, "duplicate": 3, "refused": 1, "unmatched": 2}
    assert _value("smsd_receipts_applied_total", provider="opass", account="split", source="other",
                  result="applied") == 1


def test_stream_entries_of_one_account_apply_in_one_call_per_source() -> None:
    """Pushed and pulled receipts of an account go to separate script calls (so each is counted by its
    source); entries of one source still share a call."""
    entries = [Entry(str(i), "opass:demo", [("j", 0, 1, "", "D")], 0, source)
               for i, source in enumerate(["push", "pull", "push", "pull"])]
    calls = plan_calls(entries)
    assert [[e.entry_id for e in call] for call in calls] == [["0", "2"], ["1", "3"]]


def test_a_service_start_clears_dead_processes_files_and_keeps_running_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prepare_dir removes a previous run's files (pids that no longer run) and keeps those of a process
    still running (a second worker started with the same directory); process_exited removes only a
    live gauge's file, so a dead process's counts stay summed."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    dead = 2**22 + 12345  # above any pid_max: never a running process
    for name in (f"counter_{dead}.db", f"counter_{os.getpid()}.db", f"histogram_{os.getpid()}.db"):
        (tmp_path / name).write_bytes(b"")
    prepare_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{os.getpid()}.db", f"histogram_{os.getpid()}.db"]
    (tmp_path / "gauge_livesum_77.db").write_bytes(b"")
    (tmp_path / "counter_77.db").write_bytes(b"")
    process_exited(77)
    assert not (tmp_path / "gauge_livesum_77.db").exists()
    assert (tmp_path / "counter_77.db").exists()


DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def test_the_grafana_dashboard_draws_every_metric_and_names_no_other() -> None:
    """Every query of docs/grafana-dashboard.json names metrics that are exported (with their sample
    suffixes), and every family a process or the ledger collector exports is drawn somewhere."""
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    queried = {name for panel in panels for target in panel["targets"]
               for name in re.findall(r"smsd_[a-z_]+", target["expr"])}
    families = {f.name: f.type for f in metrics.REGISTRY.collect()}
    families.update({name: "counter" if name == "smsd_ledger_events" else "gauge" for name in LEDGER_METRICS})
    samples = {family + suffix for family, kind in families.items() for suffix in SUFFIXES[kind]}
    assert queried - samples == set()
    assert {f for f, kind in families.items() if not any(f + s in queried for s in SUFFIXES[kind])} == set()
