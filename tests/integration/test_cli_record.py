"""`sms-dispatch lookup`, `status JOB --phones` and `cancel`: the per-recipient record as an operator reads it.

Run as the installed command against a real redis-server and the real Dispatcher;
the lookup test sends through a whole pipeline (sandbox, worker, beat, webhook) so
the records carry what the vendor said. Phones are masked unless --reveal-phones.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.delivery_view import local_time
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.phones import mask
from dispatcher.producer import Dispatcher
from tests.integration.pipeline import pipeline_factory  # noqa: F401 - fixture
from tests.integration.processes import cli

ONE_PARAM = "1000000000000000002"


@pytest.fixture
def env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """What `sms-dispatch` needs to reach the test's Redis with the demo accounts (no worker runs)."""
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(accounts_doc("http://127.0.0.1:9"), ensure_ascii=False))
    return {**os.environ, "SMSD_REDIS_URL": redis_url, "SMSD_ACCOUNTS_FILE": str(accounts),
            "SMSD_DATA_DIR": str(tmp_path)}


@pytest.fixture
def stored(redis_url: str, redis_client: redis.Redis) -> Dispatcher:
    """A Dispatcher on the test's Redis whose jobs are stored and never sent (no broker, no worker)."""
    return Dispatcher(Settings(redis_url=redis_url), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")),
                      client=redis_client, enqueue=lambda job_id, queue, countdown: None)


def _table(stdout: str) -> list[list[str]]:
    """The rows of a printed table, header first, split on the two-space column gaps."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- status --phones


def test_status_phones_prints_a_table_of_every_recipient_with_phones_masked(env: dict[str, str],
                                                                           stored: Dispatcher) -> None:
    """`status JOB --phones` (no --json) follows the funnel with one row per phone: masked number and state."""
    numbers = phones(3, seed=51)
    job = stored.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["1"])
    result = cli("status", job.job_id, "--phones", env=env)
    assert result.returncode == 0, result.stderr
    funnel, *table = result.stdout.splitlines()
    assert "0/3 submitted" in funnel
    rows = _table("\n".join(table))
    assert rows[:1] == [["PHONE", "STATE", "CODE", "MESSAGE ID", "TIME", "DETAIL"]], result.stdout
    assert sorted((r[0], r[1]) for r in rows[1:]) == sorted((mask(n), "pending") for n in numbers)
    assert not any(n in result.stdout for n in numbers)


def test_status_phones_reveals_numbers_only_when_asked_in_the_table_and_in_json(env: dict[str, str],
                                                                               stored: Dispatcher) -> None:
    """--json --phones masks each phone like the table; --reveal-phones prints them in full in both."""
    numbers = phones(2, seed=52)
    job = stored.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["1"])
    masked = json.loads(cli("status", job.job_id, "--json", "--phones", env=env).stdout)
    assert sorted(row["phone"] for row in masked["phones"]) == sorted(mask(n) for n in numbers)
    shown = json.loads(cli("status", job.job_id, "--json", "--phones", "--reveal-phones", env=env).stdout)
    assert sorted(row["phone"] for row in shown["phones"]) == sorted(numbers)
    assert {row["state"] for row in shown["phones"]} == {"pending"}
    table = cli("status", job.job_id, "--phones", "--reveal-phones", env=env).stdout
    assert all(n in table for n in numbers)


def test_status_of_an_unknown_job_exits_1_naming_it(env: dict[str, str], redis_client: redis.Redis) -> None:
    """A job id that is not (or no longer) stored is a one-line error and exit status 1, with --phones too."""
    result = cli("status", "0123456789abcdef", "--phones", env=env)
    assert result.returncode == 1
    assert "no job 0123456789abcdef (unknown or expired)" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- cancel (needs Dispatcher.cancel)


def test_cancel_prints_how_many_recipients_were_cancelled_and_a_second_cancel_none(env: dict[str, str],
                                                                                   stored: Dispatcher) -> None:
    """A scheduled job of 3 is cancelled whole: the command says 3, status counts 3 cancelled, a repeat says 0."""
    job = stored.send_template("demo", template_code=ONE_PARAM, phones=phones(3, seed=53), params=["1"],
                               send_at=int(time.time() * 1000) + 3_600_000)
    first = cli("cancel", job.job_id, env=env)
    assert first.returncode == 0, first.stderr
    assert f"cancelled 3 recipients of job {job.job_id}" in first.stdout
    assert stored.status(job.job_id).counts["cancelled"] == 3
    again = cli("cancel", job.job_id, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"job_id": job.job_id, "cancelled": 0}


def test_cancel_of_an_unknown_job_exits_1_naming_it(env: dict[str, str], redis_client: redis.Redis) -> None:
    """Cancelling a job id that is not stored is a one-line error and exit status 1, not a traceback."""
    result = cli("cancel", "0123456789abcdef", env=env)
    assert result.returncode == 1
    assert "no job 0123456789abcdef (unknown or expired)" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- lookup


@pytest.mark.parametrize(("args", "message"), [
    pytest.param([], "give exactly one of --msg-id or --phone", id="neither-key"),
    pytest.param(["--msg-id", "m1", "--phone", "13800000001"], "give exactly one of --msg-id or --phone",
                 id="both-keys"),
    pytest.param(["--phone", "13800000001", "--provider", "opas"], "no configured account of provider 'opas'",
                 id="unknown-provider"),
])
def test_lookup_refuses_a_bad_query_with_a_usage_error(env: dict[str, str], args: list[str], message: str) -> None:
    """A lookup by neither or both keys, or for a provider with no configured account, exits 2 saying why."""
    result = cli("lookup", *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def _row_of(d: Any) -> list[str]:
    """The lookup table's row for a record, as the command shows it (masked phone, local time)."""
    return [local_time(d.at_ms) or "-", d.job_id, f"{d.provider}:{d.account}", mask(d.phone), d.state,
            d.code or "-", d.message_id or "-", d.tag or "-", d.detail or "-"]


def test_lookup_shows_what_the_vendor_said_about_a_sent_phone_by_phone_and_by_message_id(
    pipeline_factory,  # noqa: F811
) -> None:
    """After a job is sent and its receipts came, `lookup --phone` shows the record (delivered, DELIVRD, the vendor's
    message id, the caller's bid, local time) masked; `lookup --msg-id` of that id finds every phone of the chunk."""
    p = pipeline_factory(workers=1, sandbox_settings={"outcomes": {"DELIVRD": 1.0}})
    numbers = phones(3, seed=54)
    job = p.dispatcher.send_template("demo", template_code=ONE_PARAM, phones=numbers, params=["1"], bid="order-77")
    p.wait(job.job_id, timeout_s=120)
    (record,) = p.dispatcher.lookup(phone=numbers[0])
    assert (record.state, record.code, record.tag) == ("delivered", "DELIVRD", "order-77")
    assert record.message_id
    by_phone = cli("lookup", "--phone", numbers[0], env=p.stack.env)
    assert by_phone.returncode == 0, by_phone.stderr
    assert _table(by_phone.stdout)[1:] == [_row_of(record)]
    assert numbers[0] not in by_phone.stdout
    by_id = cli("lookup", "--msg-id", record.message_id, "--provider", "opass", "--json", "--reveal-phones",
                env=p.stack.env)
    assert by_id.returncode == 0, by_id.stderr
    found = json.loads(by_id.stdout)["deliveries"]
    assert sorted(d["phone"] for d in found) == sorted(numbers)
    assert {(d["job_id"], d["state"], d["message_id"]) for d in found} == {(job.job_id, "delivered",
                                                                            record.message_id)}
    # The job's own table shows the same vendor word for that phone.
    table = _table(cli("status", job.job_id, "--phones", env=p.stack.env).stdout.split("\n", 1)[1])
    assert [mask(numbers[0]), "delivered", "DELIVRD", record.message_id, local_time(record.at_ms),
            record.detail or "-"] in table


def test_lookup_of_a_phone_never_sent_to_says_so(env: dict[str, str], redis_client: redis.Redis) -> None:
    """No record for the phone: the table form says none was found (exit 0); JSON gives an empty list."""
    empty = cli("lookup", "--phone", "13800000001", env=env)
    assert empty.returncode == 0, empty.stderr
    assert "no record found" in empty.stdout
    as_json = cli("lookup", "--phone", "13800000001", "--json", env=env)
    assert json.loads(as_json.stdout) == {"deliveries": []}
