"""The Flask and Django examples against the real pipeline: what their users would see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from examples import common
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def live(pipeline_factory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:  # noqa: F811
    """A running pipeline, with this process's SMSD_* env pointing the examples at it."""
    p = pipeline_factory(workers=1)
    for key, value in p.stack.env.items():
        if key.startswith("SMSD_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(common, "_dispatcher", None)
    yield p


def flask_client(_: pytest.MonkeyPatch) -> Any:
    from examples.flask_app.app import app

    return app.test_client()


def django_client(monkeypatch: pytest.MonkeyPatch) -> Any:
    # Set through monkeypatch so it is gone after the test: a Celery worker started
    # later with this variable would try to load Django's settings.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "examples.django_app.smsdemo.settings")
    import django
    from django.test import Client

    django.setup()
    return Client()


@pytest.mark.parametrize("make_client", [flask_client, django_client], ids=["flask", "django"])
def test_an_otp_and_a_campaign_from_the_app_are_delivered_once(live: Pipeline, make_client: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(monkeypatch)
    otp = client.post("/otp", json={"phone": "13612345678"}) if make_client is flask_client else \
        client.post("/otp", data={"phone": "13612345678"}, content_type="application/json")
    assert otp.status_code == 202
    job_id = otp.json()["job_id"] if make_client is django_client else otp.get_json()["job_id"]
    phones = [f"1590000{i:04d}" for i in range(50)]
    payload = {"phones": phones, "content": "【沙箱】会员日：全场八折。"}
    campaign = client.post("/campaign", json=payload) if make_client is flask_client else \
        client.post("/campaign", data=payload, content_type="application/json")
    assert campaign.status_code == 202
    body = campaign.get_json() if make_client is flask_client else campaign.json()
    live.wait(job_id)
    live.wait(body["job_id"])
    assert live.accepted_counts("opass", ["13612345678"]) == {1: 1}
    assert live.accepted_counts("aiofish", phones) == {1: 50}
    funnel = client.get(f"/jobs/{body['job_id']}")
    counts = (funnel.get_json() if make_client is flask_client else funnel.json())["counts"]
    assert sum(counts.values()) == 50 and counts["pending"] == 0


@pytest.mark.parametrize("make_client", [flask_client, django_client], ids=["flask", "django"])
def test_a_bad_request_names_the_field_and_queues_nothing(live: Pipeline, make_client: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(monkeypatch)
    payload = {"phones": ["13800000001", "138000"], "content": "no signature"}
    answer = client.post("/campaign", json=payload) if make_client is flask_client else \
        client.post("/campaign", data=payload, content_type="application/json")
    assert answer.status_code == 400
    problems = (answer.get_json() if make_client is flask_client else answer.json())["problems"]
    assert {p["field"] for p in problems} == {"phones[1]", "content"}
    assert live.redis.zcard(live.dispatcher.keys.jobs()) == 0
