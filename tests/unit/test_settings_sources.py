"""Settings from Django's ``SMS_DISPATCH`` dict and the ``SMSD_*`` environment: merge order and validation. Pure."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from dispatcher.config.settings import Settings, settings_from
from dispatcher.errors import ConfigurationError


def test_the_django_dict_sets_what_the_environment_does_not() -> None:
    """Keys in either case land in their fields; the rest keep their defaults."""
    s = settings_from({"REDIS_URL": "redis://cache:6379/3", "queue_otp": "app.otp"}, {})
    assert (s.redis_url, s.queue_otp) == ("redis://cache:6379/3", "app.otp")
    assert s.queue_bulk == Settings().queue_bulk


def test_an_smsd_variable_overrides_the_django_dict_for_that_field_only() -> None:
    """Operators override one process by environment without editing the project."""
    s = settings_from({"REDIS_URL": "redis://cache:6379/3", "KEY_PREFIX": "app"},
                      {"SMSD_REDIS_URL": "redis://other:6379/0"})
    assert (s.redis_url, s.key_prefix) == ("redis://other:6379/0", "app")


def test_python_values_are_taken_as_their_field_types() -> None:
    """Real Python values (bool, int for a float, a Path) are accepted as well as the variables' text."""
    s = settings_from({"RECEIPT_APPLIER": False, "RECONCILE_WINDOW_S": 30, "MAX_ATTEMPTS": 7,
                       "DATA_DIR": Path("/srv/smsd"), "TASK_EVENTS": "yes", "STUCK_AFTER_S": "90.5",
                       "CHUNKS_PER_TASK": 4.0}, {})
    assert s.receipt_applier is False and s.task_events is True
    assert s.reconcile_window_s == 30.0 and isinstance(s.reconcile_window_s, float)
    assert s.max_attempts == 7 and s.chunks_per_task == 4 and isinstance(s.chunks_per_task, int)
    assert s.data_dir == "/srv/smsd" and s.stuck_after_s == 90.5


def test_every_field_can_be_given_in_the_django_dict() -> None:
    """The dict takes the same names as the variables, for every field."""
    given = {f.name.upper(): f.default for f in fields(Settings)}
    assert settings_from(given, {}) == Settings()


@pytest.mark.parametrize("given, named", [
    ({"REDIS_UR": "redis://x"}, "SMS_DISPATCH['REDIS_UR'] is not a setting"),
    ({"SMSD_REDIS_URL": "redis://x"}, "SMS_DISPATCH['SMSD_REDIS_URL'] is not a setting"),
    ({"MAX_ATTEMPTS": "many"}, "SMS_DISPATCH['MAX_ATTEMPTS']='many' is not a valid int"),
    ({"MAX_ATTEMPTS": 2.5}, "SMS_DISPATCH['MAX_ATTEMPTS']=2.5 is not a valid int"),
    ({"RETRY_CAP_S": True}, "SMS_DISPATCH['RETRY_CAP_S']=True is not a valid float"),
    ({"RETRY_CAP_S": float("nan")}, "SMS_DISPATCH['RETRY_CAP_S']=nan is not a valid float"),
    ({"TASK_EVENTS": 1}, "SMS_DISPATCH['TASK_EVENTS']=1 is not a valid bool"),
    ({"TASK_EVENTS": "maybe"}, "SMS_DISPATCH['TASK_EVENTS']='maybe' is not a valid bool"),
    ({"REDIS_URL": 6379}, "SMS_DISPATCH['REDIS_URL']=6379 is not a valid str"),
    ({"redis_url": "a", "REDIS_URL": "b"}, "REDIS_URL is given twice"),
])
def test_a_bad_django_dict_stops_naming_the_key(given: dict[str, object], named: str) -> None:
    """An unknown key, a duplicate or a value of the wrong type is a ConfigurationError naming that key."""
    with pytest.raises(ConfigurationError) as caught:
        settings_from(given, {})
    assert named in str(caught.value)


def test_a_django_setting_that_is_not_a_dict_is_refused() -> None:
    """``SMS_DISPATCH = "redis://…"`` is a slip, not settings."""
    with pytest.raises(ConfigurationError, match="SMS_DISPATCH must be a dict of settings, got str"):
        settings_from("redis://cache", {})  # type: ignore[arg-type]


def test_a_bad_variable_is_named_even_when_the_dict_is_fine() -> None:
    """The environment's values are checked as before, with the variable's name."""
    with pytest.raises(ConfigurationError, match="SMSD_MAX_ATTEMPTS='x' is not a valid int"):
        settings_from({"MAX_ATTEMPTS": 3}, {"SMSD_MAX_ATTEMPTS": "x"})


def test_no_django_dict_means_the_environment_alone() -> None:
    """Without Django the loader is ``from_env``."""
    env = {"SMSD_KEY_PREFIX": "p", "SMSD_RECEIPT_APPLIER": "0"}
    assert settings_from(None, env) == Settings.from_env(env)


def test_the_merged_settings_are_checked_as_a_whole() -> None:
    """A TTL from the dict shorter than a horizon from the environment is refused like two variables."""
    with pytest.raises(ConfigurationError, match="must be longer than SMSD_RECEIPT_HORIZON_S"):
        settings_from({"JOB_TTL_S": 3600}, {"SMSD_RECEIPT_HORIZON_S": "7200"})
