"""Redis Sentinel settings: combinations that cannot work are refused naming the variable, and the
broker URL built from them is one kombu reads as its Sentinel transport. Pure: nothing is started."""

from __future__ import annotations

import pytest
from kombu import Connection

from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigurationError
from dispatcher.redis_connection import broker_of

SENTINELS = {"SMSD_REDIS_SENTINELS": "s1:26379, s2:26380,[::1]:26381", "SMSD_REDIS_SENTINEL_MASTER": "smsd"}


def _refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    return str(caught.value)


def test_sentinels_without_the_masters_name_are_refused_naming_the_missing_variable() -> None:
    message = _refused({"SMSD_REDIS_SENTINELS": "s1:26379"})
    assert message.startswith("SMSD_REDIS_SENTINELS is set but SMSD_REDIS_SENTINEL_MASTER is not")


@pytest.mark.parametrize("variable", ["SMSD_REDIS_SENTINEL_MASTER", "SMSD_REDIS_SENTINEL_PASSWORD",
                                      "SMSD_REDIS_PASSWORD"])
def test_a_sentinel_setting_without_sentinels_is_refused_naming_it(variable: str) -> None:
    """Else a half-configured deployment would quietly run on the embedded Redis instead."""
    assert _refused({variable: "x"}).startswith(f"{variable} is set but SMSD_REDIS_SENTINELS is not")


@pytest.mark.parametrize("given", ["s1", "s1:", ":26379", "s1:port", "s1:26379,,s2:26379", "s1:70000"])
def test_a_sentinel_that_is_not_host_and_port_is_refused_naming_the_variable(given: str) -> None:
    message = _refused({**SENTINELS, "SMSD_REDIS_SENTINELS": given})
    assert message.startswith(f"SMSD_REDIS_SENTINELS={given!r}") and "is not host:port" in message


def test_sentinels_and_a_redis_url_together_are_refused() -> None:
    """Which one would win is not obvious to whoever reads the environment: neither does."""
    message = _refused({**SENTINELS, "SMSD_REDIS_URL": "redis://elsewhere:6379/0"})
    assert message.startswith("SMSD_REDIS_URL and SMSD_REDIS_SENTINELS are both set")


@pytest.mark.parametrize(("variable", "value"), [("SMSD_REDIS_WAIT_TIMEOUT_MS", "0"),
                                                 ("SMSD_REDIS_WAIT_REPLICAS", "-1")])
def test_a_wait_that_could_block_forever_or_means_nothing_is_refused(variable: str, value: str) -> None:
    """WAIT with timeout 0 blocks until the replicas answer: a hung replica would hang every sender."""
    assert _refused({**SENTINELS, variable: value}).startswith(f"{variable} must be")


def test_the_sentinels_are_read_in_order_and_claims_wait_for_a_replica_only_under_sentinel() -> None:
    settings = Settings.from_env(SENTINELS)
    assert settings.sentinel_addresses == [("s1", 26379), ("s2", 26380), ("::1", 26381)]
    assert settings.replicas_to_wait == 1
    assert Settings.from_env({"SMSD_REDIS_URL": "redis://r:6379/0"}).replicas_to_wait == 0


def test_the_broker_under_sentinel_is_kombus_sentinel_transport_naming_the_master() -> None:
    settings = Settings.from_env({**SENTINELS, "SMSD_REDIS_PASSWORD": "p@ss/w#rd;x",
                                  "SMSD_REDIS_SENTINEL_PASSWORD": "s"})
    url, options = broker_of(settings)
    connection = Connection(url, transport_options=options)  # parses only: nothing connects until used
    assert connection.transport_cls == "sentinel"
    assert [Connection(alt).hostname for alt in connection.alt] == ["s1", "s2", "::1"]
    assert [Connection(alt).port for alt in connection.alt] == [26379, 26380, 26381]
    assert connection.password == "p@ss/w#rd;x"  # the master's, quoted in the URL and read back whole
    assert options["master_name"] == "smsd"
    assert options["sentinel_kwargs"]["password"] == "s"


def test_a_separate_broker_url_wins_over_the_sentinels_for_the_broker() -> None:
    settings = Settings.from_env({**SENTINELS, "SMSD_BROKER_URL": "amqp://rabbit//"})
    assert broker_of(settings) == ("amqp://rabbit//", {})


def test_passwords_never_show_in_the_settings_repr() -> None:
    settings = Settings.from_env({**SENTINELS, "SMSD_REDIS_PASSWORD": "hunter2-master",
                                  "SMSD_REDIS_SENTINEL_PASSWORD": "hunter2-sentinel"})
    shown = repr(settings)
    assert "hunter2" not in shown and "redis_password='***'" in shown
