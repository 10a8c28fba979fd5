"""The demo's own code path at small size: its funnels agree with the sandbox's ledger."""

from __future__ import annotations

from pathlib import Path

from dispatcher.local.demo import ISMS_RECIPIENTS, run_demo


def test_the_demo_at_small_size_ends_with_funnels_matching_the_ledger(tmp_path: Path) -> None:
    """The SMS campaign (opass and aiofish) and the international SMS job beside it all end final,
    each funnel matching what the sandbox's ledger accepted (none lost, none twice)."""
    lines: list[str] = []
    result = run_demo(recipients=3_000, otps=2, workers=1, concurrency=2, base_dir=tmp_path, say=lines.append,
                      timeout_s=240)
    assert result.ok, "\n".join(lines[-10:])
    assert len(result.funnels) == 3  # opass, aiofish and the isms job
    for counts in result.funnels.values():
        assert counts["pending"] == counts["sending"] == counts["accepted"] == 0
    assert sum(sum(c.values()) for c in result.funnels.values()) == 3_000 + ISMS_RECIPIENTS
    assert len(result.otp_latency_ms) == 2
    assert sum("sandbox ledger: lost 0, duplicated 0" in line for line in lines) == 3
    assert any(line.startswith("[demo] aiofish-isms job") for line in lines)
    # it stopped everything it started: no log keeps growing and no child is left
    assert "stopped everything" in lines[-1]
