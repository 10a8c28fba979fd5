"""Where a process finds its settings: Django's ``SMS_DISPATCH`` only when Django is in use.

Each case runs in a fresh interpreter, as a worker or app process starts: whether
Django was imported, and from which settings module, is process-wide state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: Prints the loaded settings' prefix and queue, and whether Django got imported.
PROBE = ("import json, sys; from dispatcher.config import load_settings; s = load_settings(); "
         "print(json.dumps([s.key_prefix, s.queue_otp, 'django' in sys.modules]))")


def probe(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run :data:`PROBE` in a new interpreter with ``env`` (no inherited SMSD_* or DJANGO_*)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SMSD_", "DJANGO_"))}
    return subprocess.run([sys.executable, "-c", PROBE], env={**base, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def write_settings(tmp_path: Path, sms_dispatch: dict[str, object]) -> None:
    """A Django settings module ``projsettings`` in ``tmp_path`` carrying ``SMS_DISPATCH``."""
    (tmp_path / "projsettings.py").write_text(f"SECRET_KEY = 'x'\nSMS_DISPATCH = {sms_dispatch!r}\n")


def test_without_django_settings_the_environment_alone_counts_and_django_is_never_imported(tmp_path: Path) -> None:
    """A plain worker or app (no DJANGO_SETTINGS_MODULE) does not pay for, or depend on, Django."""
    write_settings(tmp_path, {"KEY_PREFIX": "fromdjango"})
    done = probe({"SMSD_QUEUE_OTP": "env.otp", "PYTHONPATH": str(tmp_path)}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["smsd", "env.otp", False]


def test_inside_a_django_project_the_dict_is_read_and_smsd_variables_override_it(tmp_path: Path) -> None:
    """With DJANGO_SETTINGS_MODULE set, SMS_DISPATCH is read; an SMSD_* variable still wins for its field."""
    write_settings(tmp_path, {"KEY_PREFIX": "fromdjango", "queue_otp": "django.otp"})
    env = {"DJANGO_SETTINGS_MODULE": "projsettings", "PYTHONPATH": str(tmp_path), "SMSD_QUEUE_OTP": "env.otp"}
    done = probe(env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["fromdjango", "env.otp", True]


def test_an_unknown_key_in_the_project_settings_stops_the_process_naming_it(tmp_path: Path) -> None:
    """A typo in SMS_DISPATCH is not silently ignored."""
    write_settings(tmp_path, {"REDIS_UR": "redis://cache"})
    done = probe({"DJANGO_SETTINGS_MODULE": "projsettings", "PYTHONPATH": str(tmp_path)}, tmp_path)
    assert done.returncode != 0
    assert "SMS_DISPATCH['REDIS_UR'] is not a setting of sms-dispatch" in done.stderr
