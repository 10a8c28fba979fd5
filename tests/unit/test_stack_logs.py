"""Reading a worker's JSON log: its pool processes share one file, so entries can share a line."""

from __future__ import annotations

from pathlib import Path

from dispatcher.local.stack import Stack


def test_every_entry_on_a_line_is_read_and_other_lines_are_skipped(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    log = stack.logs / "w0.log"
    log.write_text('[2026-12-02 INFO] celery@w0 ready.\n'
                   '{"event": "job.fanout", "job_id": "a"}{"event": "job.fanout", "job_id": "b"}\n'
                   '{"event": "other"}\n'
                   '{"event": "job.fanout", "job_id": "c"\n', encoding="utf-8")  # still being written
    assert [e["job_id"] for e in stack.log_events("w0", "job.fanout")] == ["a", "b"]
