"""A job the broker would not take is still stored, reported, and left for the orphan sweep."""

from __future__ import annotations

import redis

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.keys import chunk_member
from dispatcher.local.demo import accounts_doc
from dispatcher.producer import Dispatcher
from dispatcher.redis_server import free_port


def test_a_job_the_broker_refused_is_stored_pending_and_marked_not_queued(redis_client: redis.Redis) -> None:
    # The real Celery client, pointed at a port nothing listens on.
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    d = Dispatcher(Settings(broker_url=dead_broker), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")),
                   client=redis_client)
    job = d.send_template("demo", template_code="1000000000000000002", phones=["13800000001", "13900000002"],
                          params=["123456"])
    assert job.queued is False
    assert d.status(job.job_id).counts["pending"] == 2
    # the orphan sweep finds it by this entry once it is overdue
    assert redis_client.zscore(d.keys.pending(), chunk_member(job.job_id, 0)) is not None


def test_a_job_the_broker_took_is_marked_queued(redis_client: redis.Redis) -> None:
    sent: list[str] = []
    d = Dispatcher(Settings(), accounts=parse_accounts(accounts_doc("http://127.0.0.1:9")), client=redis_client,
                   enqueue=lambda job_id, queue, countdown: sent.append(job_id))
    job = d.send_template("demo", template_code="1000000000000000002", phones=["13800000001"], params=["1"])
    assert job.queued is True and sent == [job.job_id]
