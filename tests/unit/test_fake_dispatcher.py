"""FakeDispatcher: what an app's tests see of it must match what the real producer does. Pure."""

from __future__ import annotations

import datetime as dt
import inspect
import itertools

import pytest

from dispatcher.config.accounts import parse_accounts
from dispatcher.deliveries import STATES, Delivery
from dispatcher.errors import ConfigurationError, ValidationError
from dispatcher.local.demo import accounts_doc
from dispatcher.producer import Dispatcher, JobStatus
from dispatcher.testing import FakeDispatcher

OTP = "1000000000000000002"
CONTENT = "【沙箱】会员日：全场八折。"
#: The methods an app calls; the fake must have each with the real one's signature (those not yet
#: on Dispatcher, pause/resume, are announced and checked as soon as they land).
API = ("send_template", "send_content", "estimate", "status", "lookup", "outcomes", "cancel", "pause", "resume",
       "uplinks", "suppress", "unsuppress", "is_suppressed", "suppression_list", "suppression_count")


def ticking_clock() -> itertools.count[int]:
    """Epoch ms that advance by one second per call: every change has its own time."""
    return itertools.count(1_700_000_000_000, 1000)


@pytest.fixture
def fake() -> FakeDispatcher:
    clock = ticking_clock()
    return FakeDispatcher(clock_ms=lambda: next(clock))


@pytest.mark.parametrize("name", API)
def test_every_producer_method_has_the_real_signature(name: str) -> None:
    """An app written against the fake calls the real Dispatcher the same way."""
    fake_method = getattr(FakeDispatcher, name)
    real = getattr(Dispatcher, name, None)
    if real is None:
        pytest.skip(f"Dispatcher.{name} is not there yet")
    assert inspect.signature(fake_method) == inspect.signature(real)


def test_a_template_job_is_recorded_in_the_outbox_with_what_would_be_sent(fake: FakeDispatcher) -> None:
    """One record per job: normalised, de-duplicated phones, params, tag, priority and send time."""
    at = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    job = fake.send_template("shop", template_code=OTP, phones=["+8613800138000", "13800138000", "13900139000"],
                             params=["493817"], bid="order-17", priority="otp", send_at=at)
    assert (job.total, job.duplicates, job.chunks, job.queued) == (2, 1, 1, True)
    (sent,) = fake.outbox
    assert (sent.job_id, sent.provider, sent.account, sent.kind) == (job.job_id, "opass", "shop", "opass.send")
    assert sent.phones == ["13800138000", "13900139000"]
    assert (sent.template_code, sent.params, sent.content, sent.per_phone) == (OTP, ["493817"], None, None)
    assert (sent.tag, sent.priority, sent.send_at) == ("order-17", "otp", int(at.timestamp() * 1000))
    assert sent.text_for("13900139000") == ["493817"]


def test_per_phone_content_is_recorded_per_phone(fake: FakeDispatcher) -> None:
    """``recipients=`` jobs keep each phone's own text."""
    job = fake.send_content("shop", recipients=[("13800138000", "【沙箱】甲"), ("13900139000", "【沙箱】乙")],
                            sms_id="c-9")
    sent = fake.job(job.job_id)
    assert (sent.kind, sent.content, sent.tag, sent.send_at) == ("aiofish.batch", None, "c-9", None)
    assert sent.text_for("13900139000") == "【沙箱】乙"


def test_a_bad_request_is_refused_naming_the_same_fields_and_nothing_is_recorded(fake: FakeDispatcher) -> None:
    """The producer's own validation runs: a bad phone and a missing signature are both named."""
    with pytest.raises(ValidationError) as caught:
        fake.send_content("shop", phones=["13800138000", "138000"], content="no signature")
    assert {p.field for p in caught.value.problems} == {"phones[1]", "content"}
    with pytest.raises(ValidationError) as caught:
        fake.send_template("shop", template_code=" ", phones=["13800138000"], params=["x" * 501], priority="now")
    assert {p.field for p in caught.value.problems} == {"template_code", "params[0]", "priority"}
    assert fake.outbox == []


def test_skipped_phones_are_listed_on_the_handle_as_the_real_one_does(fake: FakeDispatcher) -> None:
    """``skip_invalid=True`` leaves bad phones out and says which."""
    job = fake.send_content("shop", phones=["13800138000", "12"], content=CONTENT, skip_invalid=True)
    assert job.total == 1 and [p.field for p in job.invalid] == ["phones[1]"]
    assert fake.outbox[0].phones == ["13800138000"]


def test_given_accounts_refuse_an_unknown_account_as_production_would() -> None:
    """With the app's accounts file, a typo in the account name fails in the test, not in production."""
    fake = FakeDispatcher(parse_accounts(accounts_doc("http://127.0.0.1:9")))
    fake.send_content("demo", phones=["13800138000"], content=CONTENT)
    with pytest.raises(ConfigurationError, match="no account opass:demo2"):
        fake.send_template("demo2", template_code=OTP, phones=["13800138000"], params=["1"])
    with pytest.raises(ConfigurationError, match="no account aiofish:demo2"):
        fake.send_content("demo2", phones=["13800138000"], content=CONTENT)
    assert len(fake.outbox) == 1


def test_driven_outcomes_show_in_status_with_codes_and_the_callers_tag(fake: FakeDispatcher) -> None:
    """deliver / fail / reject move recipients; status counts them and lists Delivery records."""
    phones = ["13800000001", "13800000002", "13800000003", "13800000004"]
    job = fake.send_template("shop", template_code=OTP, phones=phones, params=["1"], bid="b-1")
    assert fake.status(job.job_id).counts["pending"] == 4
    fake.deliver(job.job_id, "13800000001")
    fake.fail(job.job_id, "13800000002", code="MK:0001", detail="blocked")
    fake.reject(job.job_id, "13800000003")
    fake.accept(job.job_id, "13800000004")

    status = fake.status(job.job_id, phones=True)
    assert isinstance(status, JobStatus) and set(status.counts) == set(STATES)
    assert {k: v for k, v in status.counts.items() if v} == {"delivered": 1, "failed": 1, "rejected": 1,
                                                             "accepted": 1}
    assert status.submitted and not status.finished and status.tag == "b-1"
    by_phone = {d.phone: d for d in status.phones or []}
    assert (by_phone["13800000001"].code, by_phone["13800000001"].final) == ("DELIVRD", True)
    assert (by_phone["13800000002"].code, by_phone["13800000002"].detail) == ("MK:0001", "blocked")
    assert by_phone["13800000003"].message_id == "" and by_phone["13800000001"].message_id
    assert {d.tag for d in by_phone.values()} == {"b-1"}

    fake.deliver(job.job_id)  # the rest: only the accepted one is not final
    assert fake.status(job.job_id).finished
    with pytest.raises(ValueError, match="already delivered"):
        fake.fail(job.job_id, "13800000001")


def test_cancel_cancels_what_is_still_pending_once(fake: FakeDispatcher) -> None:
    """Pending recipients become ``cancelled`` (counted); submitted ones stay; a second cancel finds none."""
    job = fake.send_content("shop", phones=["13800000001", "13800000002", "13800000003"], content=CONTENT)
    fake.accept(job.job_id, "13800000001")
    assert fake.cancel(job.job_id) == 2
    assert fake.cancel(job.job_id) == 0
    counts = fake.status(job.job_id).counts
    assert (counts["cancelled"], counts["accepted"], counts["pending"]) == (2, 1, 0)
    with pytest.raises(KeyError):
        fake.cancel("0123456789abcdef")
    with pytest.raises(KeyError):
        fake.status("0123456789abcdef")


def test_lookup_finds_a_phones_records_newest_first_and_by_message_id(fake: FakeDispatcher) -> None:
    """Across jobs and providers, narrowed by provider; a bad phone or no key is refused."""
    first = fake.send_template("shop", template_code=OTP, phones=["13800000001"], params=["1"])
    second = fake.send_content("shop", phones=["13800000001", "13800000002"], content=CONTENT)
    (delivered,) = fake.deliver(second.job_id, "13800000001")

    assert [d.job_id for d in fake.lookup(phone="+8613800000001")] == [second.job_id, first.job_id]
    assert [d.job_id for d in fake.lookup(phone="13800000001", provider="opass")] == [first.job_id]
    assert fake.lookup(message_id=delivered.message_id) == [delivered]
    assert fake.lookup(phone="13800000001", limit=1)[0].state == "delivered"
    with pytest.raises(ValidationError):
        fake.lookup(phone="12345")
    with pytest.raises(ValidationError):
        fake.lookup()


def test_outcomes_are_read_once_each_with_the_returned_cursor(fake: FakeDispatcher) -> None:
    """The feed gives final outcomes oldest first; a reader's cursor moves past what it read."""
    job = fake.send_content("shop", phones=["13800000001", "13800000002", "13800000003"], content=CONTENT)
    fake.accept(job.job_id)  # not final: not in the feed
    fake.deliver(job.job_id, "13800000002")
    fake.fail(job.job_id, "13800000001")

    got, cursor = fake.outcomes(limit=1)
    assert [(d.phone, d.state) for d in got] == [("13800000002", "delivered")]
    got, cursor = fake.outcomes(cursor)
    assert [(d.phone, d.state) for d in got] == [("13800000001", "failed")]
    tail = fake.outcomes("$")[1]
    assert fake.outcomes(cursor) == ([], cursor)
    fake.deliver(job.job_id)
    assert [d.phone for d in fake.outcomes(cursor)[0]] == ["13800000003"]
    assert [d.phone for d in fake.outcomes(tail)[0]] == ["13800000003"]
    assert all(isinstance(d, Delivery) for d in fake.outcomes()[0])
    with pytest.raises(ValueError, match="not a cursor"):
        fake.outcomes("banana")


def test_a_paused_account_shows_in_its_jobs_status_until_resumed(fake: FakeDispatcher) -> None:
    """pause / resume as an operator would, seen through status().paused."""
    job = fake.send_content("shop", phones=["13800000001"], content=CONTENT)
    fake.pause("aiofish", "shop", reason="balance low")
    assert fake.status(job.job_id).paused == "operator: balance low"  # as the real one stores it
    fake.resume("aiofish", "shop")
    assert fake.status(job.job_id).paused is None


def test_replies_are_listed_newest_first(fake: FakeDispatcher) -> None:
    """receive() stands in for an MO push; uplinks() answers like the real one."""
    fake.receive("aiofish", "shop", "13800000001", "TD")
    fake.receive("aiofish", "shop", "13800000002", "好的", ext="01")
    got = fake.uplinks("aiofish", "shop", limit=1)
    assert [(u["phone"], u["content"], u["ext"]) for u in got] == [("13800000002", "好的", "01")]
    assert fake.uplinks("opass", "shop") == []


def test_a_recipient_a_cap_held_back_reads_as_the_ledger_records_it(fake: FakeDispatcher) -> None:
    """cap() makes the recipient final ``rejected`` with code ``capped`` and the cap as detail, on the
    outcome feed like any other final outcome: what an app's handling of a capped send will meet."""
    job = fake.send_template("shop", template_code=OTP, phones=["13800000001", "13800000002"], params=["1"])
    fake.cap(job.job_id, "13800000001", detail="bulk cap 1 per 60 s")
    fake.deliver(job.job_id, "13800000002")
    records = {d.phone: (d.state, d.code, d.detail) for d in fake.status(job.job_id, phones=True).phones or []}
    assert records["13800000001"] == ("rejected", "capped", "bulk cap 1 per 60 s")
    feed, _ = fake.outcomes("0")
    assert [(d.phone, d.code) for d in feed] == [("13800000001", "capped"), ("13800000002", "DELIVRD")]
