"""`sms-dispatch send` refuses options it would otherwise ignore, before storing anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from dispatcher.cli import main

PER_PHONE_CSV = "phone,code\n13800000001,111111\n13800000002,222222\n"
PHONES_ONLY_CSV = "phone\n13800000001\n13800000002\n"


def _send(redis_url: str, tmp_path: Path, csv_text: str, *args: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "to.csv"
    path.write_text(csv_text, encoding="utf-8")
    env = {"SMSD_REDIS_URL": redis_url, "SMSD_BROKER_URL": "memory://", "SMSD_DATA_DIR": str(tmp_path)}
    return CliRunner().invoke(main, ["send", *args[:2], "--csv", str(path), *args[2:]], env=env)


@pytest.mark.parametrize(("args", "named"), [
    (("opass", "demo", "--template", "1000000000000000002", "--param", "493817"), "--param"),
    (("aiofish", "demo", "--content", "【沙箱】您好"), "--content"),
])
def test_a_per_phone_csv_with_content_or_params_is_refused_and_nothing_stored(
        redis_url: str, redis_client: redis.Redis, tmp_path: Path, args: tuple[str, ...], named: str) -> None:
    result = _send(redis_url, tmp_path, PER_PHONE_CSV, *args)
    assert result.exit_code == 2
    assert f"{named} cannot be combined with a CSV that has per-phone columns" in result.output
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(("args", "named"), [
    (("opass", "demo", "--template", "1000000000000000001", "--content", "【沙箱】您好"), "--content is not for opass"),
    (("aiofish", "demo", "--content", "【沙箱】您好", "--param", "1"), "--template/--param are not for aiofish"),
])
def test_an_option_of_the_other_gateway_is_refused(redis_url: str, redis_client: redis.Redis, tmp_path: Path,
                                                   args: tuple[str, ...], named: str) -> None:
    result = _send(redis_url, tmp_path, PHONES_ONLY_CSV, *args)
    assert result.exit_code == 2 and named in result.output
    assert redis_client.dbsize() == 0
