"""The balance guard of ``send_*`` and ``sms-dispatch send`` against real Redis and the sandbox's balances."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from dispatcher.cli import main
from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.errors import InsufficientBalanceError
from dispatcher.local.demo import phones
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.producer import Dispatcher
from tests.integration.pipeline import build_accounts

AIOFISH_BALANCE_PATH = "/rest/sms/getBalance"
OPASS_BALANCE_PATH = "/sms/residueValue/qry"
#: 71 characters with its signature: two billable messages (70 is the most one holds).
TWO_PART_TEXT = "【沙箱】" + "会" * 67
#: A balance limit that never stands between two reads (a slot every microsecond, with the limiter's
#: jitter allowance set to 0; a read is an HTTP round trip): only the cache can save the second call.
ROOMY_BALANCE = {"balance": [{"kind": "balance", "count": 1_000_000, "window_s": 1}]}
#: The sandbox answers balance queries as often as asked (its own limit would hide a second call).
SANDBOX_ROOMY = {"limits": {"aiofish_balance": {"max": 1000, "window_s": 1.0},
                            "opass_residue": {"max": 1000, "window_s": 1.0},
                            "opass_query": {"max": 1000, "window_s": 1.0}}}


class Producer:
    """A real Dispatcher on the test Redis and the sandbox, its fan-out tasks collected instead of queued."""

    def __init__(self, client: redis.Redis, sandbox_url: str, *, cache_s: float = 300.0) -> None:
        self.queued: list[str] = []
        self.redis = client
        accounts = parse_accounts(build_accounts(sandbox_url, limits=ROOMY_BALANCE))
        self.d = Dispatcher(Settings(balance_cache_s=cache_s, limiter_jitter_s=0.0), accounts=accounts, client=client,
                            enqueue=lambda job_id, queue, countdown: self.queued.append(job_id))

    def stored_jobs(self) -> int:
        """How many jobs Redis holds."""
        return int(self.redis.zcard(self.d.keys.jobs()))


def _balance_calls(sandbox: SandboxControl, path: str = AIOFISH_BALANCE_PATH) -> int:
    return int(sandbox.ledger()["requests"].get(path, 0))


def _set_aiofish_balance(sandbox: SandboxControl, remaining: int) -> None:
    sandbox.configure(**SANDBOX_ROOMY, aiofish={"accounts": {creds.AIOFISH_ACCOUNT: {"balance": remaining}}})


@pytest.fixture
def producer(redis_client: redis.Redis, sandbox_url: str, sandbox: SandboxControl) -> Producer:
    sandbox.configure(**SANDBOX_ROOMY)
    return Producer(redis_client, sandbox_url)


def test_a_send_exceeding_the_balance_is_refused_with_nothing_stored_or_queued(
        producer: Producer, sandbox: SandboxControl) -> None:
    """Three phones of a two-part text need 6 messages; with 5 left the send raises, naming needed and available."""
    _set_aiofish_balance(sandbox, 5)
    with pytest.raises(InsufficientBalanceError) as refused:
        producer.d.send_content("demo", content=TWO_PART_TEXT, phones=phones(3, seed=1))
    assert (refused.value.needed, refused.value.available, refused.value.account) == (6, 5, "aiofish:demo")
    assert "force=True" in str(refused.value)
    assert producer.stored_jobs() == 0 and producer.queued == []
    assert sandbox.ledger()["accepted"]["aiofish"] == {}


def test_force_sends_a_job_the_balance_does_not_cover(producer: Producer, sandbox: SandboxControl) -> None:
    """``force=True`` stores and queues the job the guard would refuse, without asking for the balance."""
    _set_aiofish_balance(sandbox, 5)
    job = producer.d.send_content("demo", content=TWO_PART_TEXT, phones=phones(3, seed=2), force=True)
    assert producer.queued == [job.job_id] and producer.stored_jobs() == 1
    assert _balance_calls(sandbox) == 0


def test_an_opass_send_is_checked_against_the_sum_of_its_products(producer: Producer,
                                                                 sandbox: SandboxControl) -> None:
    """opass's balance has three products; 2 + 0 + 0 messages cannot cover 3 recipients of one message each."""
    sandbox.configure(opass={"accounts": {creds.OPASS_API_KEY: {"balance": {"行业短信": 2, "会员短信": 0,
                                                                            "推广短信": 0}}}})
    with pytest.raises(InsufficientBalanceError) as refused:
        producer.d.send_template("demo", template_code="1000000000000000002", phones=phones(3, seed=3),
                                 params=["123456"])
    assert (refused.value.needed, refused.value.available) == (3, 2)
    assert producer.stored_jobs() == 0 and producer.queued == []


def test_the_cached_balance_spares_the_gateway_a_second_query(producer: Producer, sandbox: SandboxControl) -> None:
    """Two bulk sends and an estimate within the cache's life ask the gateway for the balance once."""
    producer.d.send_content("demo", content=TWO_PART_TEXT, phones=phones(2, seed=4))
    producer.d.send_content("demo", content=TWO_PART_TEXT, phones=phones(2, seed=5))
    estimate = producer.d.estimate("content", "demo", content=TWO_PART_TEXT, phones=phones(2, seed=6))
    assert _balance_calls(sandbox) == 1
    assert estimate.balance == 100_000_000 and estimate.balance_note == "cached"
    assert estimate.balance_age_s is not None and estimate.balance_age_s >= 0


def test_with_no_cache_every_send_asks_again(redis_client: redis.Redis, sandbox_url: str,
                                             sandbox: SandboxControl) -> None:
    """``SMSD_BALANCE_CACHE_S=0``: each send reads the balance (the count the cache test relies on is real)."""
    sandbox.configure(**SANDBOX_ROOMY)
    uncached = Producer(redis_client, sandbox_url, cache_s=0)
    for seed in (7, 8):
        uncached.d.send_content("demo", content=TWO_PART_TEXT, phones=phones(2, seed=seed))
    assert _balance_calls(sandbox) == 2


def test_a_top_up_is_seen_before_a_cached_short_balance_refuses(producer: Producer, sandbox: SandboxControl) -> None:
    """The cache says 5 left; the account was topped up since: the guard reads again and sends."""
    _set_aiofish_balance(sandbox, 5)
    assert producer.d.estimate("content", "demo", content=TWO_PART_TEXT, phones=phones(1, seed=9)).balance == 5
    _set_aiofish_balance(sandbox, 1_000)
    job = producer.d.send_content("demo", content=TWO_PART_TEXT, phones=phones(3, seed=10))
    assert producer.queued == [job.job_id]


def test_an_unreadable_balance_lets_the_job_through_and_the_estimate_says_so(
        producer: Producer, sandbox: SandboxControl) -> None:
    """The gateway answers the balance query with an error: the send is stored and queued, the estimate says unknown."""
    sandbox.set_faults({"kind": "code", "code": "p:001", "rate": 1.0, "path": AIOFISH_BALANCE_PATH})
    estimate = producer.d.estimate("content", "demo", content=TWO_PART_TEXT, phones=phones(3, seed=11))
    assert estimate.balance is None and estimate.covered is None
    assert "balance query failed" in estimate.balance_note
    job = producer.d.send_content("demo", content=TWO_PART_TEXT, phones=phones(3, seed=11))
    assert producer.queued == [job.job_id]


def test_an_otp_with_no_cached_balance_does_not_wait_for_the_gateway(producer: Producer,
                                                                     sandbox: SandboxControl) -> None:
    """An OTP sent before any balance is cached is stored and queued without a balance query."""
    job = producer.d.send_content("demo", content="【沙箱】您的验证码是493817。", phones=phones(1, seed=12),
                                  priority="otp")
    assert producer.queued == [job.job_id]
    assert _balance_calls(sandbox) == 0


def test_an_otp_is_refused_by_a_cached_balance_that_cannot_cover_it(producer: Producer,
                                                                    sandbox: SandboxControl) -> None:
    """With 0 left cached (and still 0 when read again), an OTP is refused before it is stored."""
    _set_aiofish_balance(sandbox, 0)
    producer.d.estimate("content", "demo", content="【沙箱】您好", phones=phones(1, seed=13))
    with pytest.raises(InsufficientBalanceError):
        producer.d.send_content("demo", content="【沙箱】您的验证码是493817。", phones=phones(1, seed=13),
                                priority="otp")
    assert producer.stored_jobs() == 0 and producer.queued == []


# sms-dispatch send -------------------------------------------------------------------------------


def _cli_send(redis_url: str, sandbox_url: str, tmp_path: Path, *options: str) -> Any:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(build_accounts(sandbox_url, limits=ROOMY_BALANCE), ensure_ascii=False))
    env = {"SMSD_REDIS_URL": redis_url, "SMSD_BROKER_URL": "memory://", "SMSD_DATA_DIR": str(tmp_path),
           "SMSD_ACCOUNTS_FILE": str(accounts)}
    args = ["send", "aiofish", "demo", "--phones", ",".join(phones(3, seed=20)), "--content", TWO_PART_TEXT]
    return CliRunner().invoke(main, [*args, *options], env=env)


def test_cli_send_without_yes_and_no_terminal_refuses_and_stores_nothing(
        redis_url: str, redis_client: redis.Redis, sandbox_url: str, sandbox: SandboxControl, tmp_path: Path) -> None:
    """No terminal to answer the question and no --yes: the estimate is shown, nothing is stored."""
    sandbox.configure(**SANDBOX_ROOMY)
    result = _cli_send(redis_url, sandbox_url, tmp_path)
    assert result.exit_code == 1
    assert "segments:   6" in result.output and "pass --yes" in result.output
    assert redis_client.zcard("smsd:jobs") == 0


def test_cli_send_with_yes_prints_the_estimate_and_sends(
        redis_url: str, redis_client: redis.Redis, sandbox_url: str, sandbox: SandboxControl, tmp_path: Path) -> None:
    sandbox.configure(**SANDBOX_ROOMY)
    result = _cli_send(redis_url, sandbox_url, tmp_path, "--yes")
    assert result.exit_code == 0, result.output
    assert "recipients: 3" in result.output and "balance:    100000000 (read" in result.output
    assert redis_client.zcard("smsd:jobs") == 1


def test_cli_send_refuses_a_job_the_balance_cannot_cover_unless_forced(
        redis_url: str, redis_client: redis.Redis, sandbox_url: str, sandbox: SandboxControl, tmp_path: Path) -> None:
    """5 messages left for 6: refused even with --yes, naming --force; --force --yes sends it."""
    _set_aiofish_balance(sandbox, 5)
    refused = _cli_send(redis_url, sandbox_url, tmp_path, "--yes")
    assert refused.exit_code == 1 and "SHORT by 1" in refused.output and "--force" in refused.output
    assert redis_client.zcard("smsd:jobs") == 0
    forced = _cli_send(redis_url, sandbox_url, tmp_path, "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert redis_client.zcard("smsd:jobs") == 1
