"""Rules the suite keeps about itself, checked by reading its source (no process started)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def _sleeps(path: Path) -> list[int]:
    """Lines of ``path`` that call ``time.sleep`` (or a bare ``sleep`` imported from time)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Attribute) and f.attr == "sleep" and isinstance(f.value, ast.Name)
                    and f.value.id == "time") or (isinstance(f, ast.Name) and f.id == "sleep"):
                lines.append(node.lineno)
    return lines


def test_no_test_sleeps_to_synchronise() -> None:
    """A test waits on a condition with a deadline (dispatcher.local.stack.wait_for), never a sleep: a sleep
    passes or fails with the machine's load, not with the behaviour. The few sleeps that are the
    behaviour under test (a slow peer, a client pacing itself) say so with ``# sleep-ok: why``."""
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        source = path.read_text(encoding="utf-8").splitlines()
        offenders += [f"{path.relative_to(TESTS)}:{n}" for n in _sleeps(path) if "# sleep-ok:" not in source[n - 1]]
    assert offenders == []


def test_the_sleep_finder_finds_both_spellings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom time import sleep\ntime.sleep(1)\nsleep(2)\nx.sleep(3)\n", encoding="utf-8")
    assert _sleeps(sample) == [3, 4]
