"""Print the mutation score of each module mutmut mutated, from its results in ``mutants/``.

A mutant counts as killed only when a unit test failed (or timed out) with it in place.
Survivors listed in ``tests/mutation_equivalents.txt`` (``name  why``) are mutants that
change no behaviour a caller can see; they are shown apart and left out of the score.
Exit status 1 when a module scores under the target (90 %), or when a listed
equivalent is no longer a survivor (the list must stay true).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGET = 0.90
#: Exit codes that prove a test caught the mutant: a failing test (1) or a timeout (mutmut's
#: 36, or SIGXCPU). Not 3 or 255, which mutmut also scores as kills: a test that could not be
#: collected or found ends that way too, and once counted every mutant it guards as killed.
KILLED = {1, 24, -24, 36, 152}
REPO = Path(__file__).resolve().parent.parent


def equivalents(path: Path) -> dict[str, str]:
    """The listed equivalent mutants: name → why."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, why = line.strip().partition(" ")
            out[name] = why.strip()
    return out


def main() -> int:
    listed = equivalents(REPO / "tests" / "mutation_equivalents.txt")
    metas = sorted((REPO / "mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `bash scripts/mutation` first", file=sys.stderr)
        return 2
    rows, bad, survivors = [], False, []
    for meta in metas:
        module = meta.relative_to(REPO / "mutants").as_posix().removesuffix(".meta")
        codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        killed = sum(1 for c in codes.values() if c in KILLED)
        equal = [n for n, c in codes.items() if n in listed and c not in KILLED]
        alive = [n for n, c in codes.items() if c not in KILLED and n not in listed]
        counted = len(codes) - len(equal)
        score = killed / counted if counted else 1.0
        bad |= score < TARGET
        rows.append((module, len(codes), killed, len(equal), len(alive), score))
        survivors += alive
    stale = [n for n in listed if not any(n in json.loads(m.read_text())["exit_code_by_key"] for m in metas)]
    print(json.dumps({"target": TARGET, "modules": [
        {"module": m, "mutants": t, "killed": k, "equivalent": e, "survived": s, "score": round(sc, 3)}
        for m, t, k, e, s, sc in rows]}, indent=1))
    print(f"{'module':48} {'mutants':>7} {'killed':>6} {'equiv':>5} {'alive':>5} {'score':>6}", file=sys.stderr)
    for m, t, k, e, s, sc in rows:
        print(f"{m:48} {t:7} {k:6} {e:5} {s:5} {sc:6.1%}{'  < target' if sc < TARGET else ''}", file=sys.stderr)
    if survivors:
        print("survivors (see each with `.venv/bin/mutmut show NAME`):", *survivors, sep="\n  ", file=sys.stderr)
    if stale:
        print("listed as equivalent but no longer a mutant:", *stale, sep="\n  ", file=sys.stderr)
    return 1 if bad or stale else 0


if __name__ == "__main__":
    sys.exit(main())
