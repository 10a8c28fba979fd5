"""The demo's own code path at small size: its funnels agree with the sandbox's ledger."""

from __future__ import annotations

from pathlib import Path

from dispatcher.local.demo import ISMS_RECIPIENTS, run_demo


def test_the_demo_at_small_size_ends_with_funnels_matching_the_ledger(tmp_path: Path) -> None:
    """The SMS campaign over both gateways, the international SMS job and the video SMS job (template
    approved by its audit push first) each end final, and each funnel agrees with what the sandbox accepted."""
    lines: list[str] = []
    result = run_demo(recipients=3_000, otps=2, videos=1_200, workers=1, concurrency=2, base_dir=tmp_path,
                      say=lines.append, timeout_s=240)
    assert result.ok, "\n".join(lines[-10:])
    assert len(result.funnels) == 4  # opass, aiofish, the isms job and the vsms job
    for counts in result.funnels.values():
        assert counts["pending"] == counts["sending"] == counts["accepted"] == 0
    assert sum(sum(c.values()) for c in result.funnels.values()) == 3_000 + ISMS_RECIPIENTS + 1_200
    video = [line for line in lines if line.startswith("[demo] aiofish-vsms job")]
    assert len(video) == 1 and "1200 recipients" in video[0] and "lost 0, duplicated 0" in video[0], video
    assert len(result.otp_latency_ms) == 2
    assert sum("sandbox ledger: lost 0, duplicated 0" in line for line in lines) == 4
    assert any(line.startswith("[demo] aiofish-isms job") for line in lines)
    # it stopped everything it started: no log keeps growing and no child is left
    assert "stopped everything" in lines[-1]
