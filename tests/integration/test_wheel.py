"""The built wheel, installed beside a Django project in a fresh venv, as an app team would use it.

The project (``tests/fixtures/djproject``) has its own ``config`` package, like every
cookiecutter-django project: the wheel must not bring a ``config`` (or ``workers``)
of its own. Then the project's tests pass with ``FakeDispatcher``, and the project,
configured only by ``SMS_DISPATCH`` in its settings, sends through a real Redis, a Celery
worker started from the venv inside the project, and the sandbox.

The wheel is built from a copy of the checkout (a build writes ``build/`` next to its
sources) and installed with the project's dependencies in ONE pip command into a venv
without system site-packages, reusing pip's cache. Every process of the venv runs with
no ``SMSD_*``, ``DJANGO_*`` or ``PYTHONPATH`` from this test's environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from dispatcher.local.demo import accounts_doc
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.stack import Stack, wait_for
from dispatcher.redis_server import free_port

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "djproject"
#: What a build of the checkout must not see: environments, caches, build output.
NOT_SOURCES = shutil.ignore_patterns(".venv", ".git", ".data", "__pycache__", "*.egg-info", "build", "dist",
                                     ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "mutants*")
CONTENT = "【沙箱】您的订单已发货。"


@dataclass(frozen=True)
class Venv:
    """A fresh venv with the wheel and Django installed."""

    wheel: Path
    bin: Path

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def env(self, **extra: str) -> dict[str, str]:
        """This test's environment without anything that would configure or locate sms-dispatch or Django."""
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("SMSD_", "DJANGO_", "PYTHON", "VIRTUAL_ENV"))}
        return {**keep, "PYTHONUNBUFFERED": "1", "PATH": f"{self.bin}{os.pathsep}{keep.get('PATH', '')}", **extra}

    def run(self, *argv: str, cwd: Path, timeout_s: float = 120.0, **env: str) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv to completion in ``cwd``."""
        return subprocess.run(list(argv), cwd=cwd, env=self.env(**env), capture_output=True, text=True,
                              timeout=timeout_s, check=False)


def run_checked(argv: list[str], *, cwd: Path) -> None:
    """Run a build step; fail the test with its output if it fails."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """Build the wheel from a copy of the checkout and install it with Django into a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run_checked([*pip, "wheel", ".", "--no-deps", "-q", "-w", str(base / "dist")], cwd=source)
    (wheel,) = (base / "dist").glob("sms_dispatch-*.whl")
    # No pip inside: this process's pip installs into it (--python), so no bootstrap is paid.
    run_checked([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], cwd=base)
    run_checked([*pip, "--python", str(base / "venv" / "bin" / "python"), "install", "-q", str(wheel), "django>=4.2"],
                cwd=base)
    return Venv(wheel, base / "venv" / "bin")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the Django project."""
    target = tmp_path / "djproject"
    shutil.copytree(FIXTURE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_the_wheel_holds_only_the_dispatcher_package(venv: Venv) -> None:
    """No top-level ``config`` or ``workers`` (or anything else) that could shadow an app's own modules."""
    with zipfile.ZipFile(venv.wheel) as wheel:
        tops = {name.split("/")[0] for name in wheel.namelist()}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"dispatcher"}, sorted(tops)


def test_import_config_in_the_venv_gives_the_projects_own_config(venv: Venv, project: Path) -> None:
    """Beside the installed wheel, ``config`` is the project's; the venv itself has no ``config`` or ``workers``."""
    probe = "import config, dispatcher; print(config.PROJECT, config.__file__, dispatcher.__file__)"
    done = venv.run(venv.python, "-c", probe, cwd=project)
    assert done.returncode == 0, done.stderr
    name, config_file, dispatcher_file = done.stdout.split()
    assert (name, Path(config_file)) == ("djproject", project / "config" / "__init__.py")
    assert Path(dispatcher_file).is_relative_to(venv.bin.parent)  # the wheel's, not the checkout's
    # -P: no script or working directory on sys.path, so only what is installed can answer.
    installed = "import importlib.util as u; print([m for m in ('config', 'workers') if u.find_spec(m)])"
    done = venv.run(venv.python, "-P", "-c", installed, cwd=project)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_the_plain_install_carries_no_sandbox_server(venv: Venv, project: Path) -> None:
    """aiohttp serves only the sandbox: a plain install (a worker or webhook image) is without it,
    and ``sms-dispatch sandbox`` there says which extra to install instead of a traceback."""
    done = venv.run(venv.python, "-P", "-c", "import importlib.util as u; print(bool(u.find_spec('aiohttp')))",
                    cwd=project)
    assert (done.returncode, done.stdout.strip()) == (0, "False"), done.stderr
    done = venv.run(str(venv.bin / "sms-dispatch"), "sandbox", "--port", "0", cwd=project)
    assert done.returncode == 1 and "pip install 'sms-dispatch[sandbox]'" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_the_projects_own_tests_pass_with_the_fake_dispatcher(venv: Venv, project: Path) -> None:
    """``python manage.py test`` in the venv: the app's tests use FakeDispatcher, with no Redis anywhere."""
    done = venv.run(venv.python, "manage.py", "test", cwd=project)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Ran 3 tests" in done.stderr and done.stderr.rstrip().endswith("OK")


@pytest.fixture
def project_stack(project: Path, venv: Venv) -> Iterator[Stack]:
    """A Stack running its processes in the project directory with the venv's clean environment."""
    stack = Stack(project)
    stack.env = venv.env()
    yield stack
    stack.stop_all()


def test_the_app_stores_a_job_and_a_worker_from_the_venv_sends_it(
        venv: Venv, project: Path, project_stack: Stack, redis_url: str, redis_client: redis.Redis,
        sandbox: SandboxControl, sandbox_url: str) -> None:
    """Settings only from SMS_DISPATCH: the view stores the job under the project's prefix and queue,
    ``celery -A dispatcher.workers worker`` started in the project picks that queue up, the sandbox accepts."""
    (project / "sms-accounts.json").write_text(json.dumps(accounts_doc(sandbox_url), ensure_ascii=False))
    env = {"DJPROJECT_REDIS_URL": redis_url}
    port = free_port()
    project_stack.spawn("web", [str(venv.bin / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                "config.wsgi"], env=env, ready="Booting worker")
    # No -Q: the queues come from SMS_DISPATCH, so a worker that missed it would listen elsewhere.
    project_stack.spawn("worker", [str(venv.bin / "celery"), "-A", "dispatcher.workers", "worker", "-c", "1",
                                   "-n", "djproject@%h", "--without-gossip", "--without-mingle",
                                   "--without-heartbeat", "-l", "INFO"],
                        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"}, ready=" ready.", timeout_s=90)
    phones = ["13800000001", "13800000002", "13800000003"]

    answer = requests.post(f"http://127.0.0.1:{port}/sms/send", json={"phones": phones, "content": CONTENT},
                           timeout=30)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert redis_client.exists(f"djproject:job:{job_id}")  # stored under the project's key prefix

    def page() -> dict[str, object]:
        result: dict[str, object] = requests.get(f"http://127.0.0.1:{port}/sms/jobs/{job_id}", timeout=10).json()
        return result

    wait_for(page, ok=lambda p: p["submitted"], timeout_s=90, what=f"job {job_id} submitted")
    accepted = sandbox.ledger()["accepted"]["aiofish"]
    assert {p: accepted.get(p, 0) for p in phones} == dict.fromkeys(phones, 1)
    assert page()["counts"]["accepted"] == 3  # type: ignore[index]
