"""The example's own tests, as an app would write them: no Redis, no worker, no gateway.

``FakeDispatcher`` takes the place of the process's Dispatcher; it validates like the
real one and records what would be sent. Run from the repository root::

    .venv/bin/python examples/django_app/manage.py test examples.django_app.smsdemo
"""

from __future__ import annotations

import json
from typing import Any

from django.test import SimpleTestCase

from dispatcher.testing import FakeDispatcher
from examples import common


class SmsViewsTest(SimpleTestCase):
    """The views send what the user asked for, and report the job as the producer sees it."""

    def setUp(self) -> None:
        self.sms = FakeDispatcher()
        previous = common.use_dispatcher(self.sms)  # type: ignore[arg-type]
        self.addCleanup(common.use_dispatcher, previous)

    def post(self, path: str, payload: object) -> tuple[int, Any]:
        answer = self.client.post(path, data=json.dumps(payload), content_type="application/json")
        return answer.status_code, answer.json()

    def test_an_otp_is_sent_to_that_phone_on_the_otp_queue(self) -> None:
        status, body = self.post("/otp", {"phone": "+8613612345678"})
        self.assertEqual(status, 202)
        (sent,) = self.sms.outbox
        self.assertEqual((sent.job_id, sent.phones, sent.priority), (body["job_id"], ["13612345678"], "otp"))
        self.assertEqual(sent.template_code, common.OTP_TEMPLATE)
        self.assertRegex((sent.params or [""])[0], r"^\d{6}$")

    def test_a_bad_phone_is_refused_and_nothing_is_sent(self) -> None:
        status, body = self.post("/otp", {"phone": "12345"})
        self.assertEqual((status, [p["field"] for p in body["problems"]]), (400, ["phone"]))
        self.assertEqual(self.sms.outbox, [])

    def test_the_job_page_shows_the_outcomes(self) -> None:
        _, body = self.post("/campaign", {"phones": ["13800000001", "13800000002"], "content": "【沙箱】会员日"})
        job_id = str(body["job_id"])
        self.sms.deliver(job_id, "13800000001")
        self.sms.fail(job_id, "13800000002")
        funnel = self.client.get(f"/jobs/{job_id}").json()
        self.assertTrue(funnel["finished"])
        self.assertEqual((funnel["counts"]["delivered"], funnel["counts"]["failed"]), (1, 1))
