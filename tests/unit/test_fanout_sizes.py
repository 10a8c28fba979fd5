"""How a job's chunks are spread over send tasks."""

from __future__ import annotations

import pytest

from dispatcher.sending import chunks_per_task


@pytest.mark.parametrize(("chunks", "per_task"), [(1, 1), (64, 1), (65, 2), (128, 2), (200, 4), (1000, 8)])
def test_small_jobs_get_a_task_per_chunk_and_big_ones_share_tasks_up_to_the_setting(chunks: int, per_task: int) -> None:
    assert chunks_per_task(chunks, 8) == per_task


def test_one_chunk_per_task_when_the_setting_says_so() -> None:
    assert chunks_per_task(1000, 1) == 1


@pytest.mark.parametrize(("per_s", "per_task"), [(285.7, 8), (100.0, 3), (20.0, 1), (5.0, 1)])
def test_a_task_holds_no_more_than_a_few_hundredths_of_a_second_of_its_accounts_limit(per_s: float,
                                                                                      per_task: int) -> None:
    """An OTP waits for a thread about as long as a bulk task lasts: at 5 sends/s, one chunk, not eight."""
    assert chunks_per_task(10_000, 8, per_s=per_s) == per_task
