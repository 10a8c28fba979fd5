"""`sms-dispatch suppress add|remove|list|import` as an operator runs them: the installed command on a
real redis-server, read back through the Dispatcher a producer uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import redis

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.local.demo import accounts_doc, phones
from dispatcher.phones import mask
from dispatcher.producer import Dispatcher
from tests.integration.processes import cli

P1, P2, P3 = phones(3, seed=1301)


@pytest.fixture
def env(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> dict[str, str]:
    """What `sms-dispatch` needs to reach the test's (emptied) Redis with the demo accounts."""
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(accounts_doc("http://127.0.0.1:9"), ensure_ascii=False))
    return {**os.environ, "SMSD_REDIS_URL": redis_url, "SMSD_ACCOUNTS_FILE": str(accounts),
            "SMSD_DATA_DIR": str(tmp_path)}


@pytest.fixture
def d(redis_url: str, redis_client: redis.Redis) -> Dispatcher:
    """The producer's view of the same Redis."""
    return Dispatcher(Settings(redis_url=redis_url), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")),
                      client=redis_client, enqueue=lambda job_id, queue, countdown: None)


def test_add_then_remove_changes_the_list_the_producer_checks(env: dict[str, str], d: Dispatcher) -> None:
    """`add` lists the phones (a +86 form is the same phone) and says how many were new; `remove`
    takes one off; the Dispatcher sees each change."""
    added = cli("suppress", "add", "opass:demo", P1, "+86" + P1, P2, env=env)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "2 added to the suppression list of opass:demo (0 already on it); it holds 2"
    assert d.is_suppressed("opass", "demo", P1) and d.is_suppressed("opass", "demo", P2)
    removed = cli("suppress", "remove", "opass:demo", P1, P3, env=env)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == "1 removed from the suppression list of opass:demo (1 not on it); it holds 1"
    assert not d.is_suppressed("opass", "demo", P1) and d.is_suppressed("opass", "demo", P2)


def test_list_masks_phones_unless_revealed_and_a_channel_shows_its_entrys_list(env: dict[str, str],
                                                                              d: Dispatcher) -> None:
    """The video channel's list is the aiofish entry's; phones print masked, in full with --reveal-phones."""
    d.suppress("aiofish", "demo", [P2, P1])
    shown = cli("suppress", "list", "aiofish-vsms:demo", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == sorted([mask(P1), mask(P2)])
    assert "2 on the suppression list of aiofish:demo" in shown.stderr
    revealed = json.loads(cli("suppress", "list", "aiofish:demo", "--json", "--reveal-phones", env=env).stdout)
    assert revealed == {"list": "aiofish:demo", "count": 2, "phones": sorted([P1, P2])}


def test_import_adds_the_first_column_and_reports_each_row_that_is_no_number(env: dict[str, str], d: Dispatcher,
                                                                             tmp_path: Path) -> None:
    """A header is skipped, a bad row is named on stderr (masked) and left out, the others are added."""
    d.suppress("opass", "demo", P3)
    path = tmp_path / "unsubscribed.csv"
    path.write_text(f"phone,when\n{P1},2024-05-01\n1380000000x,2024-05-02\n{P3},2024-05-03\n", encoding="utf-8")
    result = cli("suppress", "import", "opass:demo", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"list": "opass:demo", "read": 3, "added": 1, "already": 1, "invalid": 1}
    assert "skipped phone 2: '138****000x' is not a valid number" in result.stderr
    assert sorted(d.suppression_list("opass", "demo")) == sorted([P1, P3])


@pytest.mark.parametrize(("args", "message"), [
    (["add", "opass:nope", P1], "no account opass:nope"),
    (["add", "opass:demo", P1, "1380000000x"], "phones[1]: '138****000x' is not a valid number"),
    (["list", "opass"], "give the account as PROVIDER ACCOUNT or PROVIDER:ACCOUNT"),
])
def test_a_bad_account_or_phone_is_refused_with_a_message_and_nothing_changes(
        env: dict[str, str], d: Dispatcher, args: list[str], message: str) -> None:
    """Exit 1 with the reason (a phone masked), no traceback; a list with one bad phone adds none."""
    result = cli("suppress", *args, env=env)
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
    assert d.suppression_count("opass", "demo") == 0
