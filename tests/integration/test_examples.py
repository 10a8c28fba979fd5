"""The Flask and Django examples against real Redis: what their users and operators would see.

Each app runs in this process through its framework's test client, with the
normal ``SMSD_*`` environment pointing it at the session's redis-server and at
an accounts file whose gateways are the sandbox. The first tests need no
worker: they read back what the request stored in Redis and the one message it
put on the broker queue. The last one runs the real pipeline end to end.

Why in-process is robust here: the examples build their ``Dispatcher`` lazily,
from ``load_settings()`` (the ``SMSD_*`` environment), on the first request, and the producer sends the
fan-out task *by name* through its own small Celery client
(``dispatcher/enqueue.py``). Nothing on that path imports ``dispatcher/workers/app.py``,
whose module-level settings would be frozen at its first import. So it is
enough to set the environment with ``monkeypatch`` and forget the process's
Dispatcher before each test. Non-default queue names and key prefix make a
stale environment fail loudly instead of passing by accident.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.local.demo import accounts_doc
from dispatcher.local.stack import wait_for
from examples import common
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture

PREFIX = "exampletest"
QUEUE_OTP = "exampletest.otp"
QUEUE_BULK = "exampletest.bulk"
CONTENT = "【沙箱】会员日：全场八折。"
REPO = Path(__file__).resolve().parents[2]
#: Each example's job-event task (its ``SMSD_ON_JOB_EVENT``) and the Celery module its own worker runs.
EVENT_TASKS = {"flask_client": ("examples.flask_app.tasks.sms_event", "examples.flask_app.tasks"),
               "django_client": ("smsdemo.tasks.sms_event", "examples.django_app.smsdemo.tasks")}
EVENT_QUEUE = "exampletest.events"


class JsonClient:
    """The same two calls over Flask's and Django's test clients: ``(status, json body)``."""

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.client = client

    def post(self, path: str, payload: Any) -> tuple[int, Any]:
        """POST ``payload`` as JSON."""
        if self.name == "flask":
            answer = self.client.post(path, json=payload)
            return answer.status_code, answer.get_json()
        answer = self.client.post(path, data=json.dumps(payload), content_type="application/json")
        return answer.status_code, answer.json()

    def get(self, path: str) -> tuple[int, Any]:
        """GET a JSON answer."""
        answer = self.client.get(path)
        return answer.status_code, (answer.get_json() if self.name == "flask" else answer.json())


def flask_client(_: pytest.MonkeyPatch) -> JsonClient:
    """Flask's test client on the example app."""
    from examples.flask_app.app import app

    return JsonClient("flask", app.test_client())


def django_client(monkeypatch: pytest.MonkeyPatch) -> JsonClient:
    """Django's test client on the example project (settings loaded once per process)."""
    # Through monkeypatch so it is gone after the test: a Celery worker started
    # later with this variable in its environment would try to set Django up.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "examples.django_app.smsdemo.settings")
    import django
    from django.test import Client

    django.setup()
    return JsonClient("django", Client())


CLIENTS = pytest.mark.parametrize("make_client", [flask_client, django_client], ids=["flask", "django"])


@pytest.fixture
def app_env(tmp_path: Path, redis_url: str, redis_client: redis.Redis, sandbox_url: str,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """The examples' SMSD_* environment: the test Redis (emptied), the sandbox's accounts."""
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(accounts_doc(sandbox_url), ensure_ascii=False), encoding="utf-8")
    for name in [n for n in os.environ if n.startswith("SMSD_")]:
        monkeypatch.delenv(name)
    env = {"SMSD_REDIS_URL": redis_url, "SMSD_ACCOUNTS_FILE": str(accounts), "SMSD_DATA_DIR": str(tmp_path),
           "SMSD_KEY_PREFIX": PREFIX, "SMSD_QUEUE_OTP": QUEUE_OTP, "SMSD_QUEUE_BULK": QUEUE_BULK}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(common, "_dispatcher", None)  # the next request builds one from this env
    yield redis_client


def broker_lists(client: redis.Redis) -> dict[str, list[bytes]]:
    """Every Redis list in the database: the kombu queues (the ledger keeps no lists here)."""
    lists: dict[str, list[bytes]] = {}
    for key in client.scan_iter():
        if client.type(key) == b"list":
            lists[key.decode()] = list(client.lrange(key, 0, -1))  # type: ignore[arg-type]
    return lists


def stored_job(client: redis.Redis, job_id: str) -> dict[str, str]:
    """The job's hash as the producer wrote it (meta and counters)."""
    raw: dict[bytes, bytes] = client.hgetall(f"{PREFIX}:job:{job_id}")  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}


def decode_task(raw: bytes) -> tuple[dict[str, Any], list[Any], dict[str, Any], str]:
    """A Celery (protocol 2) message from kombu's Redis list: headers, args, kwargs, decoded body."""
    message = json.loads(raw)
    assert message["properties"]["body_encoding"] == "base64"
    body = base64.b64decode(message["body"]).decode()
    args, kwargs, _embed = json.loads(body)
    return message["headers"], args, kwargs, body


def assert_one_fanout(client: redis.Redis, queue: str, job_id: str, secrets: list[str]) -> None:
    """Exactly one message is queued, on ``queue``: fanout(job_id), with none of ``secrets`` in it."""
    lists = broker_lists(client)
    assert list(lists) == [queue] and len(lists[queue]) == 1, lists
    raw = lists[queue][0]
    headers, args, kwargs, body = decode_task(raw)
    assert headers["task"] == "workers.tasks.fanout"
    assert (args, kwargs) == ([job_id], {})
    for text in secrets:
        for form in {text, json.dumps(text)[1:-1]}:  # as is, and JSON-escaped
            assert form not in raw.decode() and form not in body


@CLIENTS
def test_a_campaign_is_stored_in_redis_and_queued_as_one_task_carrying_only_its_id(
        app_env: redis.Redis, make_client: Callable[[pytest.MonkeyPatch], JsonClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(monkeypatch)
    phones = [f"1590000{i:04d}" for i in range(2001)]  # one more than an aiofish sendSms chunk
    status, body = client.post("/campaign", {"phones": [*phones, phones[7]], "content": CONTENT})

    assert status == 202
    assert body["recipients"] == 2001 and body["duplicates_dropped"] == 1
    job = stored_job(app_env, body["job_id"])
    assert (job["kind"], job["account"], job["priority"]) == ("aiofish.send", "demo", "bulk")
    assert (job["total"], job["c:pending"], job["chunks"]) == ("2001", "2001", "2")
    stored = [app_env.hget(f"{PREFIX}:job:{body['job_id']}:c:{n}", "phones") for n in (0, 1)]
    assert stored == ["".join(phones[:2000]).encode(), phones[2000].encode()]
    assert_one_fanout(app_env, QUEUE_BULK, body["job_id"], [*phones, CONTENT])

    status, funnel = client.get(f"/jobs/{body['job_id']}")
    assert status == 200
    assert funnel["total"] == 2001 and funnel["counts"]["pending"] == 2001 and not funnel["finished"]


@CLIENTS
def test_an_otp_goes_to_the_otp_queue_without_its_phone_or_code(
        app_env: redis.Redis, make_client: Callable[[pytest.MonkeyPatch], JsonClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(monkeypatch)
    status, body = client.post("/otp", {"phone": "+8613612345678"})

    assert status == 202 and list(body) == ["job_id"]
    job = stored_job(app_env, body["job_id"])
    assert (job["kind"], job["account"], job["priority"]) == ("opass.send", "demo", "otp")
    assert (job["template_code"], job["total"]) == (common.OTP_TEMPLATE, "1")
    (code,) = json.loads(job["params"])
    assert len(code) == 6 and code.isdigit()
    assert_one_fanout(app_env, QUEUE_OTP, body["job_id"], ["13612345678", code])


@CLIENTS
def test_a_bad_request_answers_400_naming_each_field_and_queues_nothing(
        app_env: redis.Redis, make_client: Callable[[pytest.MonkeyPatch], JsonClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(monkeypatch)
    status, body = client.post("/campaign", {"phones": ["13800000001", "138000"], "content": "no signature"})
    assert status == 400
    assert {p["field"] for p in body["problems"]} == {"phones[1]", "content"}
    assert all(set(p) == {"field", "message"} for p in body["problems"])
    assert "138000" not in json.dumps(body)  # the bad number is shown masked

    assert client.post("/campaign", {"phones": "13800000001", "content": CONTENT})[1]["problems"] == [
        {"field": "phones", "message": "must be a JSON list of phone numbers"}]
    status, body = client.post("/otp", {})
    assert status == 400 and [p["field"] for p in body["problems"]] == ["phone"]

    assert client.get("/jobs/0123456789abcdef")[0] == 404
    assert broker_lists(app_env) == {}
    assert app_env.zcard(f"{PREFIX}:jobs") == 0


@pytest.fixture
def live(pipeline_factory, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
         request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    """A running pipeline (workers, beat, webhook), with the examples' SMSD_* env pointing at it; its workers
    send job events to the example's own task, run by the example's own Celery worker (as its docstring says)."""
    task, module = EVENT_TASKS[request.node.callspec.params["make_client"].__name__]
    p = pipeline_factory(workers=1, env={"SMSD_ON_JOB_EVENT": task, "SMSD_JOB_EVENT_QUEUE": EVENT_QUEUE})
    p.stack.spawn("app-events", [sys.executable, "-m", "celery", "-A", module, "worker", "-Q", EVENT_QUEUE,
                                 "-c", "1", "-n", "app-events@%h", "--without-gossip", "--without-mingle",
                                 "--without-heartbeat", "-l", "INFO"], ready=" ready.", env={"PYTHONPATH": str(REPO)})
    for key, value in p.stack.env.items():
        if key.startswith("SMSD_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(common, "_dispatcher", None)
    yield p


@CLIENTS
def test_an_otp_and_a_campaign_from_the_app_are_delivered_once_and_the_apps_task_hears_them_finish(
        live: Pipeline, make_client: Callable[[pytest.MonkeyPatch], JsonClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both jobs go out once each; the example's own SMSD_ON_JOB_EVENT task records their ``finished`` event
    with the final counts, and the job page shows it."""
    client = make_client(monkeypatch)
    status, otp = client.post("/otp", {"phone": "13612345678"})
    assert status == 202
    phones = [f"1590000{i:04d}" for i in range(50)]
    status, campaign = client.post("/campaign", {"phones": phones, "content": CONTENT})
    assert status == 202

    live.wait(otp["job_id"])
    live.wait(campaign["job_id"])
    assert live.accepted_counts("opass", ["13612345678"]) == {1: 1}
    assert live.accepted_counts("aiofish", phones) == {1: 50}
    status, funnel = client.get(f"/jobs/{campaign['job_id']}")
    assert status == 200 and funnel["finished"]
    assert sum(funnel["counts"].values()) == 50 and funnel["counts"]["pending"] == 0
    for job_id in (otp["job_id"], campaign["job_id"]):
        page = wait_for(lambda job_id=job_id: client.get(f"/jobs/{job_id}")[1],
                        ok=lambda page: "finished" in page["events"], what=f"the app's task heard {job_id} finish")
        assert page["events"]["finished"] == page["counts"]
        assert set(page["events"]) <= {"submitted", "finished"}


def test_the_operations_guide_lists_every_setting_with_its_default() -> None:
    from dataclasses import fields

    from dispatcher.config.settings import Settings

    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
    rows = {cells[1].strip("` "): cells[2].strip() for line in guide.splitlines()
            if line.startswith("| `SMSD_") and len(cells := line.split("|")) > 3}
    for f in fields(Settings):
        default = f.default
        shown = "(empty)" if default == "" else f"`{default:g}`" if isinstance(default, float) else f"`{default}`"
        assert rows.get(f"SMSD_{f.name.upper()}") == shown, f.name
    assert len(rows) == len(fields(Settings))


def test_the_django_examples_own_tests_pass_with_the_fake_dispatcher() -> None:
    """The example's tests.py (FakeDispatcher in place of the real one) runs green under Django's runner."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSD_", "DJANGO_"))}
    done = subprocess.run([sys.executable, "examples/django_app/manage.py", "test", "examples.django_app.smsdemo"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Ran 3 tests" in done.stderr and "OK" in done.stderr
