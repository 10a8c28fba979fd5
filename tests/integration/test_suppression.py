"""Unsubscribe replies on real processes: a reply pushed (or pulled) through the real webhook (or beat's
poll) puts its phone on the account's suppression list, and the next campaign skips that phone.

The sandbox's ledger of what it accepted is the ground truth for "never sent"; the recipient's record
(status, lookup, outcome feed) is what tells a user why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.local.demo import AIOFISH_HOOK_TOKEN, OPASS_HOOK_TOKEN, accounts_doc, phones
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.sandbox.push_payloads import opass_uplink
from dispatcher.local.stack import wait_for
from dispatcher.producer import Dispatcher
from dispatcher.providers.aiofish.vsms import Frame
from dispatcher.providers.aiofish.vsms_templates import submit_template
from dispatcher.template_audits import APPROVED, PENDING, read_audit
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture

ONE_PARAM = "1000000000000000002"
SIGNED = "【沙箱】本周会员日，全场八折。回复TD退订"
#: Fast audits for the video template, and fast push retries.
FAST_AUDIT = {"time_scale": 0.01, "vsms_audit_delay_s": 10.0}


def _opass_replies_to(p: Pipeline) -> str:
    """Point the sandbox's opass uplink pushes at the pipeline's webhook; return that hook's URL."""
    url = f"{p.stack.webhook_url}/hooks/opass/demo/{OPASS_HOOK_TOKEN}"
    p.sandbox.configure(opass={"accounts": {creds.OPASS_API_KEY: {"uplink_url": url}}})
    return url


def _listed(p: Pipeline, provider: str, phone: str) -> None:
    """Wait until ``phone`` is on ``provider:demo``'s suppression list (the reply has gone through)."""
    wait_for(lambda: p.dispatcher.is_suppressed(provider, "demo", phone), timeout_s=60,
             what=f"the reply of {phone[:3]}… listed on {provider}:demo")


def _sent_once_except(p: Pipeline, gateway: str, numbers: list[str], skipped: str) -> None:
    """The sandbox accepted every number once, except ``skipped``, which it never saw."""
    accepted = p.sandbox.ledger()["accepted"][gateway]
    assert accepted.get(skipped, 0) == 0, f"{gateway} was sent the suppressed phone"
    assert p.accepted_counts(gateway, [n for n in numbers if n != skipped]) == {1: len(numbers) - 1}


def test_a_pushed_tuiding_reply_lists_the_phone_and_the_next_campaign_skips_it(pipeline_factory) -> None:  # noqa: F811
    """The sandbox pushes a `退订` reply to the opass hook under gunicorn; the phone is listed, and a
    campaign stored next sends every other phone once and never that one, whose record says why."""
    p = pipeline_factory(workers=1)
    _opass_replies_to(p)
    numbers = phones(30, seed=1201)
    quitter = numbers[7]
    p.sandbox.inject_uplink("opass", creds.OPASS_API_KEY, quitter, "退订")
    _listed(p, "opass", quitter)
    assert [u["content"] for u in p.dispatcher.uplinks("opass", "demo")] == ["退订"]

    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["1"])
    assert (job.total, job.suppressed) == (30, 1)
    status = p.wait(job.job_id)
    assert status.counts["suppressed"] == 1 and status.total == sum(status.counts.values())
    _sent_once_except(p, "opass", numbers, quitter)
    [record] = [d for d in p.dispatcher.lookup(phone=quitter) if d.job_id == job.job_id]
    assert (record.state, record.code, record.message_id) == ("suppressed", "suppressed", "")


def test_a_full_width_td_pushed_to_an_aiofish_account_also_stops_its_video_sms(pipeline_factory) -> None:  # noqa: F811
    """`ＴＤ` (full width) pushed encrypted to the aiofish hook lists the phone on the aiofish entry's list,
    which its video SMS channel shares: an SMS campaign and a video campaign both skip the phone;
    the opass account's list, another entry's, does not hold it."""
    p = pipeline_factory(workers=1, sandbox_settings=FAST_AUDIT)
    p.sandbox.configure(aiofish={"accounts": {creds.AIOFISH_ACCOUNT: {
        "reply_url": f"{p.stack.webhook_url}/hooks/aiofish/demo/{AIOFISH_HOOK_TOKEN}"}}})
    numbers = phones(12, seed=1202, prefix="15")
    quitter = numbers[0]
    p.sandbox.inject_uplink("aiofish", creds.AIOFISH_ACCOUNT, quitter, " ＴＤ ")
    _listed(p, "aiofish", quitter)
    assert p.dispatcher.is_suppressed("aiofish-vsms", "demo", quitter)
    assert not p.dispatcher.is_suppressed("opass", "demo", quitter)

    sms = p.dispatcher.send_content("demo", content=SIGNED, phones=numbers)
    tpl_id = submit_template(p.dispatcher.runtime, "demo", "week", [Frame.of_text(1, 1, "本周会员日，全场八折。")], {})
    audit = wait_for(lambda: read_audit(p.redis, p.dispatcher.keys, "aiofish-vsms", "demo", tpl_id),
                     ok=lambda a: a is not None and a.state != PENDING, timeout_s=60, what="the template's audit push")
    assert audit is not None and audit.state == APPROVED
    video = p.dispatcher.send_video("demo", template_id=tpl_id, phones=numbers)
    assert (sms.suppressed, video.suppressed) == (1, 1)
    for job in (sms, video):
        assert p.wait(job.job_id, timeout_s=180).counts["suppressed"] == 1
    _sent_once_except(p, "aiofish", numbers, quitter)
    _sent_once_except(p, "aiofish-vsms", numbers, quitter)


def test_a_pulled_reply_lists_the_phone(pipeline_factory) -> None:  # noqa: F811
    """A reply the aiofish account only serves by getReply (no push) reaches the list through beat's
    reply poll: the pulled path keeps and acts on it as the pushed one does."""
    p = pipeline_factory(workers=1, sandbox_settings={"receipt_mode": "pull"})
    quitter = phones(1, seed=1203)[0]
    p.sandbox.inject_uplink("aiofish", creds.AIOFISH_ACCOUNT, quitter, "退订")
    _listed(p, "aiofish", quitter)
    assert [u["content"] for u in p.dispatcher.uplinks("aiofish", "demo")] == ["退订"]


def test_a_reply_pushed_twice_is_acted_on_once(pipeline_factory) -> None:  # noqa: F811
    """The vendor pushes the same `TD` reply again (its first answer lost): after an operator took the
    phone off the list in between, the repeat neither lists it again nor keeps a second reply."""
    p = pipeline_factory(workers=1, beat=False)
    hook = _opass_replies_to(p)
    quitter = phones(1, seed=1204)[0]
    push = opass_uplink(creds.OPASS_API_KEY, "106900001", quitter, "TD", 1_700_000_000.0, hook)
    answers = [requests.post(hook, data=push.body, headers={"Content-Type": push.content_type}, timeout=10)]
    assert answers[0].status_code == 200 and p.dispatcher.is_suppressed("opass", "demo", quitter)
    assert p.dispatcher.unsuppress("opass", "demo", quitter) == 1
    answers.append(requests.post(hook, data=push.body, headers={"Content-Type": push.content_type}, timeout=10))
    assert answers[1].status_code == 200  # answered as kept: the vendor must not push it a third time
    assert not p.dispatcher.is_suppressed("opass", "demo", quitter)
    assert len(p.dispatcher.uplinks("opass", "demo")) == 1


# --------------------------------------------------------------------------- at store time, no worker


def _stored(redis_url: str, client: redis.Redis, queued: list[Any], **unsubscribe: Any) -> Dispatcher:
    """A Dispatcher on the test's Redis whose jobs are stored, and their fan-outs only noted in ``queued``."""
    doc = accounts_doc("http://127.0.0.1:9")
    if unsubscribe:
        doc["opass"][0]["unsubscribe"] = unsubscribe
    return Dispatcher(Settings(redis_url=redis_url), accounts=parse_accounts(doc), client=client,
                      enqueue=lambda job_id, queue, countdown: queued.append(job_id))


@pytest.mark.parametrize(("rules", "otp_skips"), [({}, False), ({"otp": True}, True)], ids=["default", "otp-true"])
def test_an_otp_is_sent_to_a_listed_phone_unless_the_account_says_otherwise(
        redis_url: str, redis_client: redis.Redis, tmp_path: Path, rules: dict[str, Any], otp_skips: bool) -> None:
    """A listed phone still gets its one-time code by default (it asked for it); an account with
    ``"unsubscribe": {"otp": true}`` skips it there too. Bulk jobs skip it either way."""
    queued: list[Any] = []
    d = _stored(redis_url, redis_client, queued, **rules)
    phone = phones(1, seed=1205)[0]
    d.suppress("opass", "demo", phone)
    otp = d.send_template("demo", template_code=ONE_PARAM, phones=[phone], params=["4321"], priority="otp")
    bulk = d.send_template("demo", template_code=ONE_PARAM, phones=[phone], params=["4321"])
    assert otp.suppressed == int(otp_skips) and bulk.suppressed == 1
    assert d.status(otp.job_id).counts["pending"] == int(not otp_skips)


@pytest.mark.parametrize("listed_extra", [0, 500], ids=["list-shorter-than-the-job", "list-longer-than-the-job"])
def test_a_campaign_sets_aside_exactly_its_listed_phones_and_keeps_the_others_in_order(
        redis_url: str, redis_client: redis.Redis, listed_extra: int) -> None:
    """Whichever way the job is checked (a short list read whole, a long one asked per phone), the
    listed phones of the job and no other are recorded suppressed; the rest keep their order."""
    queued: list[Any] = []
    d = _stored(redis_url, redis_client, queued)
    numbers = phones(40, seed=1207)
    listed = numbers[3::7]
    d.suppress("opass", "demo", listed + phones(listed_extra, seed=1208, prefix="19"))
    job = d.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["1"])
    records = d.status(job.job_id, phones=True).phones or []
    assert [r.phone for r in records if r.state == "pending"] == [n for n in numbers if n not in listed]
    assert [r.phone for r in records if r.state == "suppressed"] == listed


def test_a_job_of_only_listed_phones_is_finished_when_stored_and_never_queued(redis_url: str,
                                                                               redis_client: redis.Redis) -> None:
    """Nothing left to send: no fan-out is queued, the job is finished at once with both job events
    queued for the app, and each recipient's final outcome is on the outcome feed."""
    queued: list[Any] = []
    d = _stored(redis_url, redis_client, queued)
    numbers = phones(3, seed=1206)
    d.suppress("opass", "demo", numbers)
    job = d.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["1"])
    status = d.status(job.job_id, phones=True)
    assert (job.chunks, queued, status.finished) == (0, [], True)
    assert {(r.phone, r.state) for r in status.phones or []} == {(n, "suppressed") for n in numbers}
    events = {e.decode() for e in redis_client.zrange(d.keys.job_events(), 0, -1)}
    assert events == {f"{job.job_id}|submitted", f"{job.job_id}|finished"}
    outcomes, _ = d.outcomes("0")
    assert sorted(r.phone for r in outcomes) == sorted(numbers)
