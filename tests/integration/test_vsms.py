"""aiofish video SMS (vsms) end to end on real processes: producer, Celery worker, sandbox, webhook.

The sandbox pushes each status report with only its ``msgId`` (no uuid), and each
template audit result, to the ``aiofish-vsms`` hook under gunicorn; the ledger of
what the sandbox accepted is the ground truth for "every phone once".
"""

from __future__ import annotations

import pytest

from dispatcher.errors import ValidationError
from dispatcher.local.demo import phones
from dispatcher.local.stack import wait_for
from dispatcher.providers.aiofish.vsms import Frame
from dispatcher.providers.aiofish.vsms_templates import query_template, submit_template
from dispatcher.template_audits import APPROVED, PENDING, REJECTED, Audit, read_audit
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture

VSMS = "aiofish-vsms"
#: Fast audits and push retries (a status push that overtakes the recording of its send's
#: answer is answered 503 and comes again after 5 min × time_scale).
FAST_AUDIT = {"time_scale": 0.01, "vsms_audit_delay_s": 10.0}
FINAL = ("delivered", "failed", "unknown")


def _template(p: Pipeline, title: str, text: str) -> str:
    """Submit a one-frame text template plus a picture; return its id."""
    frames = [Frame.of_text(1, 1, text), Frame.of_file(2, 1, "pic.png")]
    return submit_template(p.dispatcher.runtime, "demo", title, frames, {"pic.png": b"\x89PNG fake picture"})


def _audited(p: Pipeline, tpl_id: str) -> Audit:
    """Wait until an audit push has replaced the pending state kept at submit; return it."""
    audit: Audit = wait_for(lambda: read_audit(p.redis, p.dispatcher.keys, VSMS, "demo", tpl_id),
                            ok=lambda a: a is not None and a.state != PENDING, timeout_s=60,
                            what=f"audit push of {tpl_id}")
    return audit


def _check_job(p: Pipeline, job_id: str, numbers: list[str]) -> None:
    """Every phone final in the record, with the vendor's message id, and accepted once by the sandbox."""
    status = p.wait(job_id, timeout_s=180)
    records = {d.phone: d for d in status.phones or p.dispatcher.status(job_id, phones=True).phones or []}
    assert set(records) == set(numbers)
    assert {d.state for d in records.values()} <= set(FINAL), "a recipient is not final"
    assert all(d.message_id for d in records.values())
    assert p.accepted_counts(VSMS, numbers) == {1: len(numbers)}


def test_a_vsms_job_of_each_form_reaches_every_phone_once_and_its_pushed_receipts_are_applied(
    pipeline_factory,  # noqa: F811
) -> None:
    """Template submit → audit push (approved) → both send forms, chunked at 1000 phones a call, through
    the worker; each status push (msgId only) is matched to its chunk and applied; the record and the
    lookups show it, and the caller's uuid is the job's tag."""
    p = pipeline_factory(workers=1, sandbox_settings=FAST_AUDIT)
    plain = _template(p, "plain", "您的快递已到，请查收。")
    filled = _template(p, "filled", "#p_1#，您的订单#p_2#已发货。")
    assert _audited(p, plain).state == APPROVED and _audited(p, filled).state == APPROVED

    everyone = phones(1001, seed=41, prefix="17")
    some = phones(20, seed=42, prefix="19")
    a = p.dispatcher.send_video("demo", template_id=plain, phones=everyone, uuid="campaign-7")
    b = p.dispatcher.send_video("demo", template_id=filled,
                                recipients=[(ph, [f"客户{i}", f"NO{i:04d}"]) for i, ph in enumerate(some)])
    assert (a.chunks, b.chunks) == (2, 1)
    _check_job(p, a.job_id, everyone)
    _check_job(p, b.job_id, some)
    status = p.dispatcher.status(a.job_id, phones=True)
    assert (status.kind, status.tag) == (f"{VSMS}.message", "campaign-7")
    assert status.counts["delivered"] > 0, "no status push was applied"

    record = next(d for d in status.phones or [] if d.phone == everyone[-1])
    by_id = p.dispatcher.lookup(message_id=record.message_id, provider=VSMS)
    assert everyone[-1] in {d.phone for d in by_id}
    by_phone = p.dispatcher.lookup(phone=some[0])
    assert [(d.job_id, d.provider, d.state) for d in by_phone][:1] == [(b.job_id, VSMS, by_phone[0].state)]
    assert by_phone[0].state in FINAL


def test_a_template_pending_or_rejected_in_audit_is_refused_before_queueing_with_nothing_stored(
    pipeline_factory,  # noqa: F811
) -> None:
    """A send naming a template still pending audit, then one the audit push rejected, raises a
    ValidationError naming template_id; no job is stored and the sandbox accepts nothing."""
    p = pipeline_factory(workers=1, webhook=True, sandbox_settings={"time_scale": 0.01,
                                                                    "vsms_audit_delay_s": 100_000.0})
    waiting = _template(p, "waiting", "稍后审核。")
    p.sandbox.configure(vsms_audit_delay_s=10.0)
    refused = _template(p, "REJECT me", "不会通过。")
    assert _audited(p, refused).state == REJECTED
    assert query_template(p.dispatcher.runtime, "demo", waiting).state == PENDING

    for tpl_id, why in ((waiting, "pending audit"), (refused, "rejected in audit")):
        with pytest.raises(ValidationError) as caught:
            p.dispatcher.send_video("demo", template_id=tpl_id, phones=phones(3, seed=43))
        assert [(e.field, why in e.message) for e in caught.value.problems] == [("template_id", True)]
    assert p.redis.zcard(p.dispatcher.keys.jobs()) == 0, "a refused send stored a job"
    assert p.sandbox.ledger()["accepted"][VSMS] == {}
