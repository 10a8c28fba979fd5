"""How a job's chunks are spread over send tasks."""

from __future__ import annotations

import pytest

from dispatcher.sending import chunks_per_task


@pytest.mark.parametrize(("chunks", "per_task"), [(1, 1), (16, 1), (17, 2), (30, 2), (200, 8), (1000, 8)])
def test_small_jobs_get_a_task_per_chunk_and_big_ones_share_tasks_up_to_the_setting(chunks: int, per_task: int) -> None:
    assert chunks_per_task(chunks, 8) == per_task


def test_one_chunk_per_task_when_the_setting_says_so() -> None:
    assert chunks_per_task(1000, 1) == 1
