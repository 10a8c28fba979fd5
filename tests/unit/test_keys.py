"""Parsing the names sms-dispatch builds for chunks (dispatcher.keys).

A sweep reads ``{job}:{n}`` members back from its sorted sets (parse_chunk_member), and a
receipt's bid/smsId ``{job}.{n}.{attempt}`` is read back to find the chunk attempt it is for
(parse_client_id). Each must give back exactly what its builder was given, and refuse what
no builder makes: a receipt naming someone else's id is counted as unmatched, never applied.
"""

from __future__ import annotations

import pytest

from dispatcher.keys import Keys, chunk_member, client_id, parse_chunk_member, parse_client_id

JOB = "3f2a9c0d11e4b5a7"  # the producer's job ids: secrets.token_hex(8)


@pytest.mark.parametrize(("job_id", "n"), [(JOB, 0), (JOB, 7), (JOB, 12345), ("a", 1), ("tenant:42", 3)])
def test_a_chunk_member_reads_back_as_its_job_and_number(job_id: str, n: int) -> None:
    """parse_chunk_member inverts chunk_member, a job id holding ``:`` included (the number is after the last)."""
    member = chunk_member(job_id, n)
    assert member == f"{job_id}:{n}"  # the documented layout: "{job}:{n}"
    assert parse_chunk_member(member) == (job_id, n)


@pytest.mark.parametrize(
    "member",
    [
        "3f2a9c0d11e4b5a7",  # no separator
        ":3",  # no job
        "job:",  # no number
        "job:x",
        "job:-1",  # a sign is not a digit
        "job:+1",
        "job:1.0",
        "job: 1",
        "job:1 ",
        "job:３",  # full-width digit: isdigit() but not ASCII
        "job:٣",  # Arabic-Indic digit
        "",
    ],
)
def test_a_malformed_chunk_member_is_refused_naming_it(member: str) -> None:
    """Anything chunk_member cannot produce raises ValueError quoting the member."""
    with pytest.raises(ValueError) as err:
        parse_chunk_member(member)
    assert str(err.value) == f"not a chunk member: {member!r}"


@pytest.mark.parametrize(("job_id", "n", "attempt"), [(JOB, 0, 1), (JOB, 17, 3), ("j", 1, 10)])
def test_a_client_id_reads_back_as_its_job_chunk_and_attempt(job_id: str, n: int, attempt: int) -> None:
    """parse_client_id inverts client_id, so a receipt leads back to the very chunk attempt that was sent."""
    value = client_id(job_id, n, attempt)
    assert value == f"{job_id}.{n}.{attempt}"  # the documented layout: "{job}.{n}.{attempt}"
    assert len(client_id(JOB, 99999, 99)) <= 32  # aiofish's smsId limit, for the producer's job ids
    assert parse_client_id(value) == (job_id, n, attempt)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "customer-bid-42",  # a bid given by a caller, not one of ours
        f"{JOB}.1",  # too few parts
        f"{JOB}.1.2.3",  # too many
        ".1.2",  # no job
        f"{JOB}..2",  # no chunk number
        f"{JOB}.1.",  # no attempt
        f"{JOB}.x.2",
        f"{JOB}.1.y",
        f"{JOB}.-1.2",
        f"{JOB}.1.+2",
        f"{JOB}.１.2",  # full-width digit
        f"{JOB}.1.٢",  # Arabic-Indic digit
        f"{JOB}.1 .2",
    ],
)
def test_an_id_we_did_not_build_is_not_ours(value: str) -> None:
    """Foreign or malformed bids give None (the receipt is counted as unmatched), never a wrong chunk."""
    assert parse_client_id(value) is None


def test_the_parts_scripts_build_keys_from_give_the_same_keys() -> None:
    """Lookup scripts build chunk and phone index keys from parts: they must agree with the builders."""
    keys = Keys("p")
    head, middle = keys.chunk_parts()
    assert head + "j1" + middle + "7" == keys.chunk("j1", 7)
    assert keys.phone_index_head() + "20797:12" == keys.phone_bucket(20797, 12)
    assert keys.phone_index_head() + "20797:jobs" == keys.phone_jobs(20797)
