"""Every recipient's record is the same through every door: status, lookup, the feed, the CLI, job events.

One pipeline on real processes (redis-server, the sandbox, our Celery worker, the webhook taking the
sandbox's pushes; beat later) sends jobs whose recipients end in every outcome kind:

* ``O`` (opass, three chunks) and ``A`` (aiofish): the sandbox draws each phone's receipt from an even
  mix of DELIVRD, every failure status it can give, and no receipt at all, so phones end delivered,
  failed with each vendor code, or (no receipt) accepted and later unknown. ``O`` also holds two
  blacklisted numbers the gateway refuses at submit (``failPhones``): rejected one by one;
* ``R`` (opass): a chunk the gateway refuses whole (40004): rejected;
* ``S`` (opass, scheduled) and ``P`` (aiofish, its account paused by the operator): cancelled.

Beat is started only after the first look: without it no sweep runs, so the phones with no receipt stay
``accepted`` for as long as that look takes (no race with the horizon). Then beat's sweep, with the receipt
horizon shrunk to 2 s, makes them ``unknown`` and every job finishes for the second look.

What each phone should end as comes from the sandbox's own rule (a phone's receipt is a hash of the seed,
the vendor's message id and the phone) and the vendor's message id from the sandbox's record of what it
accepted, so the expected codes are the vendor's, not read back from our ledger.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis

from dispatcher.deliveries import TERMINAL, Delivery
from dispatcher.local.demo import phones
from dispatcher.local.sandbox.receipts import AIOFISH_PUSH_STAT, NO_RECEIPT, RECEIPT_STATES, OutcomeMix
from dispatcher.local.stack import wait_for
from dispatcher.producer import Dispatcher
from dispatcher.providers.opass.client import FAIL_PHONES_CODE
from tests.fixtures.event_app import EVENTS_KEY, TASK_NAME
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture
from tests.integration.processes import cli

REPO = Path(__file__).resolve().parents[2]
ONE_PARAM = "1000000000000000002"
CONTENT = "【沙箱】会员日：全场八折。"
EVENT_QUEUE = "records-test.events"
#: Every receipt status the sandbox can send, and no receipt, equally likely. With 200 phones a job,
#: the chance that one of the eight is drawn by none of them is 8 * (7/8)**200, about 2e-11.
MIX = {**dict.fromkeys(RECEIPT_STATES, 1.0), NO_RECEIPT: 1.0}
DRAWN = 200
BLACKLISTED = phones(2, seed=9101, prefix="19")
#: Key of a recipient across jobs: (job id, phone).
Key = tuple[str, str]


class Jobs:
    """The test's jobs: handles by letter, the phones each was given, and the tag (bid / sms_id) it carries."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.numbers: dict[str, list[str]] = {}
        self.tags: dict[str, str] = {}

    def add(self, letter: str, job_id: str, numbers: list[str], tag: str) -> None:
        self.ids[letter], self.numbers[letter], self.tags[letter] = job_id, numbers, tag

    def keys(self, *letters: str) -> list[Key]:
        return [(self.ids[x], phone) for x in letters for phone in self.numbers[x]]


# --------------------------------------------------------------------------- what the vendor decided


def vendor_outcomes(p: Pipeline, provider: str, numbers: Iterable[str]) -> dict[str, str | None]:
    """The receipt status (``None``: no receipt) the sandbox gives each phone it accepted: its own rule applied
    to the message id of its own record of the phone's message."""
    config = p.sandbox.config()
    mix, seed = OutcomeMix.from_mapping(config["outcomes"]), int(config["seed"])
    out = {}
    for phone in numbers:
        (message,) = p.sandbox.messages(phone)
        assert message["gateway"] == provider
        out[phone] = mix.pick(seed, message["message_id"], phone)
    return out


def receipt_word(provider: str, status: str | None, *, swept: bool) -> tuple[str, str, str]:
    """``(state, code, detail)`` a phone with receipt ``status`` must show: the vendor's words as they came.

    opass pushes the status itself (``arriveResult``: DELIVRD, UNDELIV…); aiofish pushes its ``stat``
    number with the status as ``statDes``. No receipt: accepted until beat's sweep, unknown after, no code.
    """
    if status is None:
        return ("unknown" if swept else "accepted"), "", ""
    state = "delivered" if status == "DELIVRD" else "failed"
    if provider == "opass":
        return state, status, ""
    return state, str(AIOFISH_PUSH_STAT[status]), status


# --------------------------------------------------------------------------- reading every door


def by_status(d: Dispatcher, job_ids: Iterable[str]) -> dict[Key, Delivery]:
    """Every recipient record of the jobs, as ``status(job, phones=True)`` gives them."""
    return {(r.job_id, r.phone): r for job in job_ids for r in d.status(job, phones=True).phones or []}


def read_feed(d: Dispatcher, *, limit: int = 7) -> tuple[list[Delivery], list[str]]:
    """The whole outcome feed from "0" in pages of ``limit`` (cursors land inside entries), and each cursor."""
    found: list[Delivery] = []
    cursors: list[str] = []
    cursor = "0"
    while True:
        page, cursor = d.outcomes(cursor, limit=limit)
        if not page:
            return found, cursors
        assert len(page) <= limit
        found += page
        cursors.append(cursor)


def cli_records(p: Pipeline, *args: str, key: str) -> list[Delivery]:
    """Records as ``sms-dispatch ARGS --json --reveal-phones`` prints them (under ``key``), run as an operator would."""
    result = cli(*args, "--json", "--reveal-phones", env=p.stack.env)
    assert result.returncode == 0, result.stderr
    return [Delivery(**row) for row in json.loads(result.stdout)[key]]


def assert_seen_alike(p: Pipeline, jobs: Jobs, expected: dict[Key, tuple[str, str, str]], *,
                      cli_jobs: list[str], cli_phones: list[Key]) -> dict[Key, Delivery]:
    """Each expected recipient shows its (state, code, detail) and tag in ``status``, and the very same record
    (every field) through ``lookup`` by phone and by message id, the outcome feed (final ones, once each) and
    the CLI's ``status --phones`` / ``lookup`` for ``cli_jobs`` / ``cli_phones`` and every message id."""
    d = p.dispatcher
    seen = by_status(d, jobs.ids.values())
    assert set(seen) == set(expected)
    tags = {job_id: jobs.tags[letter] for letter, job_id in jobs.ids.items()}
    wrong = {k: (r.state, r.code, r.detail) for k, r in seen.items() if (r.state, r.code, r.detail) != expected[k]}
    assert not wrong, f"{len(wrong)} records differ from the vendor's word, e.g. {sorted(wrong.items())[:3]}"
    assert {(k, r.tag) for k, r in seen.items()} == {(k, tags[k[0]]) for k in seen}
    assert all(r.at_ms > 0 for r in seen.values())

    for key, record in seen.items():
        assert d.lookup(phone=key[1]) == [record], key
    mids = {(r.provider, r.message_id) for r in seen.values() if r.message_id}
    for provider, mid in mids:
        chunk = sorted((r for r in seen.values() if r.message_id == mid), key=lambda r: r.phone)
        assert sorted(d.lookup(message_id=mid, provider=provider, limit=10_000), key=lambda r: r.phone) == chunk
        shown = cli_records(p, "lookup", "--msg-id", mid, "--provider", provider, "--limit", "10000",
                            key="deliveries")
        assert sorted(shown, key=lambda r: r.phone) == chunk, mid

    feed, cursors = read_feed(d)
    assert len({(r.job_id, r.phone) for r in feed}) == len(feed), "a final outcome came twice"
    assert {(r.job_id, r.phone): r for r in feed} == {k: r for k, r in seen.items() if r.state in TERMINAL}
    assert any("/" in c for c in cursors), f"no page ended inside a feed entry: {cursors}"

    for job_id in cli_jobs:
        assert {(r.job_id, r.phone): r for r in cli_records(p, "status", job_id, "--phones", key="phones")} == {
            k: r for k, r in seen.items() if k[0] == job_id}
    for key in cli_phones:
        assert cli_records(p, "lookup", "--phone", key[1], key="deliveries") == [seen[key]], key
    return seen


# --------------------------------------------------------------------------- the app's job-event task


def start_event_worker(p: Pipeline) -> None:
    """A second Celery worker, of the app's own module (tests/fixtures/event_app.py), on the same broker."""
    p.stack.spawn("events", [sys.executable, "-m", "celery", "-A", "tests.fixtures.event_app", "worker",
                             "-Q", EVENT_QUEUE, "-c", "1", "-n", "events@%h", "--without-gossip",
                             "--without-mingle", "--without-heartbeat", "-l", "INFO"],
                  ready=" ready.", env={"PYTHONPATH": str(REPO)})


def events_received(client: redis.Redis) -> list[dict[str, Any]]:
    """Every call the app's task received, in order: ``{"args": [...], "kwargs": {...}}``."""
    return [json.loads(raw) for raw in client.lrange(EVENTS_KEY, 0, -1)]  # type: ignore[union-attr]


def worker_events(p: Pipeline, event: str) -> list[dict[str, Any]]:
    """The JSON log entries of the pipeline's worker whose event is ``event``."""
    return p.stack.log_events("w0", event)


def pairs_of(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["args"][0], e["args"][1]) for e in events}


# --------------------------------------------------------------------------- the test


def test_every_outcome_kind_is_seen_alike_by_status_lookup_feed_cli_and_the_apps_event_task(
    pipeline_factory,  # noqa: F811
) -> None:
    """Accepted, delivered, failed (each vendor code of both gateways), rejected (per phone and whole chunk),
    unknown and cancelled recipients show the same record (state, vendor code and text, message id, time,
    caller's tag) through every door, and the app's task hears ``submitted`` and ``finished`` of every job
    with the final counts and no phone."""
    p = pipeline_factory(workers=1, beat=False, opass={"batch_max": 100},
                         env={"SMSD_RECEIPT_HORIZON_S": "2", "SMSD_ON_JOB_EVENT": TASK_NAME,
                              "SMSD_JOB_EVENT_QUEUE": EVENT_QUEUE},
                         sandbox_settings={"outcomes": MIX, "blacklist": BLACKLISTED})
    start_event_worker(p)
    d, jobs = p.dispatcher, Jobs()

    # R: the gateway's next /message/send answers 40004 (参数错误): the whole chunk is refused.
    p.sandbox.set_faults({"kind": "code", "code": "40004", "rate": 1.0, "count": 1, "path": "/message/send"})
    numbers = phones(4, seed=9102)
    jobs.add("R", d.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["1"],
                                  bid="refused-r").job_id, numbers, "refused-r")
    p.wait(jobs.ids["R"], timeout_s=60)

    # O and A: receipts drawn from the mix; O's two blacklisted numbers are refused at submit.
    numbers = phones(DRAWN, seed=9103)
    numbers = [BLACKLISTED[0], *numbers[:50], BLACKLISTED[1], *numbers[50:]]  # both in chunk 0, beside good ones
    jobs.add("O", d.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["2"],
                                  bid="campaign-o").job_id, numbers, "campaign-o")
    numbers = phones(DRAWN, seed=9104, prefix="15")
    jobs.add("A", d.send_content("demo", content=CONTENT, phones=numbers, sms_id="promo-a").job_id, numbers,
             "promo-a")
    for letter in ("O", "A"):
        p.wait(jobs.ids[letter], until="submitted", timeout_s=60)

    # S: scheduled for an hour from now, cancelled whole. P: its account paused, its chunk held pending
    # by the worker (claim refused), then cancelled.
    numbers = phones(3, seed=9105)
    jobs.add("S", d.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["3"], bid="later-s",
                                  send_at=int(time.time() * 1000) + 3_600_000).job_id, numbers, "later-s")
    assert d.cancel(jobs.ids["S"]) == 3
    d.pause("aiofish", "demo", "records test")
    numbers = phones(3, seed=9106, prefix="15")
    jobs.add("P", d.send_content("demo", content=CONTENT, phones=numbers, sms_id="held-p").job_id, numbers,
             "held-p")
    wait_for(lambda: worker_events(p, "chunk.not_claimed"), ok=lambda found: any(
        e.get("job_id") == jobs.ids["P"] and e.get("status") == "paused" for e in found),
        what="the paused account's chunk held by the worker")
    assert d.cancel(jobs.ids["P"]) == 3
    assert d.cancel(jobs.ids["P"]) == 0
    d.resume("aiofish", "demo")

    # What the vendor decided for each phone it took (its rule, its message ids).
    drawn = {(jobs.ids[x], phone): status for x, provider in (("O", "opass"), ("A", "aiofish"))
             for phone, status in vendor_outcomes(p, provider, [n for n in jobs.numbers[x]
                                                                 if n not in BLACKLISTED]).items()}
    for x in ("O", "A"):
        got = {drawn[k] for k in jobs.keys(x) if k in drawn}
        assert got == {*RECEIPT_STATES, None}, f"{x}: the mix drew only {got}"

    def expected(*, swept: bool) -> dict[Key, tuple[str, str, str]]:
        out = {k: receipt_word("opass" if k[0] == jobs.ids["O"] else "aiofish", status, swept=swept)
               for k, status in drawn.items()}
        out |= {(jobs.ids["O"], phone): ("rejected", FAIL_PHONES_CODE, "refused at submit (format, blacklist…)")
                for phone in BLACKLISTED}
        out |= {k: ("cancelled", "", "") for k in jobs.keys("S", "P")}
        return out

    # First look (no beat, so no sweep): receipts that come have come; the silent phones are accepted.
    first = expected(swept=False)
    chunk_refusal = by_status(d, [jobs.ids["R"]])
    assert {(r.state, r.code) for r in chunk_refusal.values()} == {("rejected", "40004")}
    first |= {k: (r.state, r.code, r.detail) for k, r in chunk_refusal.items()}
    # (States only: a wrong code is for assert_seen_alike to name.)
    wait_for(lambda: {k: r.state for k, r in by_status(d, jobs.ids.values()).items()},
             ok=lambda now: now == {k: word[0] for k, word in first.items()}, what="every receipt applied",
             timeout_s=60)
    silent = [k for k, status in drawn.items() if status is None]
    assert_seen_alike(p, jobs, first, cli_jobs=[jobs.ids["O"], jobs.ids["A"]],
                      cli_phones=[silent[0], silent[-1]])

    # Second look: beat's sweep makes the silent phones unknown; every job finishes.
    p.stack.start_beat()
    for job_id in jobs.ids.values():
        p.wait(job_id, timeout_s=60)
    second = expected(swept=True) | {k: first[k] for k in chunk_refusal}
    # The CLI looks up one phone of each kind: each state of each job (a chunk refusal, a per-phone one…).
    one_each = {(k[0], state): k for k, (state, _, _) in sorted(second.items())}
    seen = assert_seen_alike(p, jobs, second, cli_jobs=list(jobs.ids.values()), cli_phones=list(one_each.values()))
    assert {r.state for r in seen.values()} == {"delivered", "failed", "rejected", "unknown", "cancelled"}

    # The app's own worker heard submitted and finished of every job (at least once), finished with the
    # final counts, and only ids and counts: no phone of any job.
    wanted = {(job_id, event) for job_id in jobs.ids.values() for event in ("submitted", "finished")}
    events = wait_for(lambda: events_received(p.redis), ok=lambda got: wanted <= pairs_of(got),
                      what="job events at the app's task", timeout_s=60)
    assert pairs_of(events) == wanted
    for event in events:
        job_id, name, counts = event["args"]
        assert event["kwargs"] == {} and len(event["args"]) == 3
        if name == "finished":
            assert counts == d.status(job_id).counts, job_id
    raw = json.dumps(events)
    assert not [n for x in jobs.numbers.values() for n in x if n in raw], "a phone travelled to the app's task"
