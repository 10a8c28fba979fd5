"""Outside ``dispatcher/providers/`` no code names a gateway: what differs between gateways is in their plugs.

A gateway's name in code (a string constant such as ``"opass"``, ``"aiofish.batch"`` or
``"opass:"``; prose in docstrings and comments does not count) means a switch on it,
which a third gateway would have to find and extend. The send path reads the registry
(:mod:`dispatcher.providers.registry`) instead. Only the local tooling may name them. Pure.
"""

from __future__ import annotations

import ast
from pathlib import Path

from dispatcher.providers import registry

ROOT = Path(__file__).resolve().parents[2] / "dispatcher"
#: The local tooling (dispatcher/local/): it simulates and drives the vendors, so it names them.
LOCAL = {"local"}


def _names_a_gateway(value: str) -> bool:
    return any(value == name or value.startswith((f"{name}.", f"{name}:")) for name in registry.names())


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def gateway_names_in(path: Path) -> list[str]:
    """``line: constant`` for every string constant of ``path`` that names a gateway."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [f"{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
            and _names_a_gateway(node.value)]


def _modules() -> dict[str, Path]:
    """Every module outside providers/, by its path below dispatcher/."""
    return {str(p.relative_to(ROOT)): p for p in sorted(ROOT.rglob("*.py"))
            if p.relative_to(ROOT).parts[0] != "providers"}


def test_no_module_outside_the_providers_names_a_gateway() -> None:
    found = {rel: names for rel, path in _modules().items()
             if Path(rel).parts[0] not in LOCAL and (names := gateway_names_in(path))}
    assert found == {}, f"gateway names outside dispatcher/providers/ (ask the registry instead): {found}"


def test_the_check_sees_a_switch_on_a_gateway(tmp_path: Path) -> None:
    """The detector itself: a constant naming a gateway or a job kind is found, a docstring is not."""
    sample = tmp_path / "sample.py"
    sample.write_text('"""About opass."""\nif provider == "opass":\n    kind = "aiofish.batch"\n', encoding="utf-8")
    assert gateway_names_in(sample) == ["2: 'opass'", "3: 'aiofish.batch'"]
