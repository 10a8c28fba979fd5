"""A send naming a declared opass template is refused before anything reaches Redis or the broker.

A real Dispatcher on a real redis-server; its enqueue step records instead of reaching a
broker, so "nothing queued" is observable. The same fixture stores a job that fits, so an
empty database after a refusal is the refusal's doing, not a fixture that cannot store.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import ValidationError
from dispatcher.local.demo import accounts_doc
from dispatcher.producer import Dispatcher

OTP = "1000000000000000002"
INCOME = "1000000000000000003"
TEMPLATES = {OTP: "您的验证码是{验证码,6}，5分钟内有效。", INCOME: "{姓名,10}您好，您本次收入${金额,10}元。"}
P1, P2 = "13800000001", "13800000002"


@pytest.fixture
def producer(redis_client: redis.Redis) -> tuple[Dispatcher, list[str]]:
    queued: list[str] = []
    doc = accounts_doc("http://127.0.0.1:9")
    doc["opass"][0]["templates"] = TEMPLATES
    d = Dispatcher(Settings(), accounts=parse_accounts(doc), client=redis_client,
                   enqueue=lambda job_id, queue, countdown: queued.append(job_id))
    return d, queued


@pytest.mark.parametrize(("kwargs", "field", "variable"), [
    pytest.param({"template_code": OTP, "phones": [P1], "params": ["1234567"]}, "params[0]", "{验证码,6}",
                 id="value-too-long"),
    pytest.param({"template_code": OTP, "phones": [P1], "params": ["1", "2"]}, "params", "{验证码,6}",
                 id="too-many-values"),
    pytest.param({"template_code": INCOME, "recipients": [(P1, ["王五", "1"]), (P2, ["王五", "1" * 11])]},
                 "recipients[1].params[1]", "{金额,10}", id="one-recipients-value-too-long"),
    pytest.param({"template_code": INCOME, "recipients": [(P1, ["王五", "1"]), (P2, ["王五"])]},
                 "recipients[1].params", "{金额,10}", id="one-recipient-short-of-values"),
])
def test_a_send_that_does_not_fit_its_declared_template_stores_and_queues_nothing(
        producer: tuple[Dispatcher, list[str]], redis_client: redis.Redis, kwargs: dict[str, Any], field: str,
        variable: str) -> None:
    d, queued = producer
    with pytest.raises(ValidationError) as err:
        d.send_template("demo", **kwargs)
    assert err.value.fields == (field,)
    assert variable in str(err.value)
    assert redis_client.dbsize() == 0 and queued == []


def test_a_send_that_fits_its_declared_template_is_stored_and_queued(
        producer: tuple[Dispatcher, list[str]], redis_client: redis.Redis) -> None:
    d, queued = producer
    job = d.send_template("demo", template_code=INCOME, recipients=[(P1, ["王五", "300.09"]), (P2, ["张三", "222"])])
    assert queued == [job.job_id]
    assert d.status(job.job_id).total == 2 and redis_client.dbsize() > 0


def test_a_template_the_account_does_not_declare_is_stored_unchecked(
        producer: tuple[Dispatcher, list[str]]) -> None:
    d, queued = producer
    job = d.send_template("demo", template_code="1000000000000000009", phones=[P1], params=["x" * 40, "y"])
    assert queued == [job.job_id]
