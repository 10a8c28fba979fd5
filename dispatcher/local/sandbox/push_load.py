"""Pushes as the vendors would send them, for receipts of accepted jobs stored straight in our ledger.

Local tooling for the webhook benchmark (``bench/webhook.py``) and the receipt
drills (:mod:`dispatcher.local.drill`): stores jobs whose chunks are claimed and
accepted as a worker records them, builds opass status pushes and aiofish
reports of their receipts with the sandbox's own vendor-side encoders
(:mod:`dispatcher.local.sandbox.push_payloads`), and checks afterwards that each
receipt changed the ledger once.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

from dispatcher.keys import client_id, parse_client_id
from dispatcher.ledger import PHONE_WIDTH, ChunkData, Ledger
from dispatcher.local.demo import AIOFISH_HOOK_TOKEN, OPASS_HOOK_TOKEN, accounts_doc, phones
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.sandbox import push_payloads
from dispatcher.local.sandbox.config import initial_config, parse_config
from dispatcher.local.sandbox.receipts import Receipt

OPASS_PATH = f"/hooks/opass/demo/{OPASS_HOOK_TOKEN}"
AIOFISH_PATH = f"/hooks/aiofish/demo/{AIOFISH_HOOK_TOKEN}"
DELIVERED_SHARE = 0.95


def accepted_job(ledger: Ledger, job_id: str, count: int, *, provider: str, seed: int, now_ms: int,
                 chunk_size: int = 1000) -> list[tuple[list[str], str]]:
    """Store ``count`` recipients as one job of ``provider:demo`` with every chunk claimed and accepted,
    as a worker records them; return ``(phones, bid)`` per chunk. Raises ``RuntimeError`` if one is not."""
    numbers = phones(count, seed=seed)
    chunks = [numbers[i : i + chunk_size] for i in range(0, count, chunk_size)]
    ledger.create_job(job_id, {"provider": provider, "account": "demo", "priority": "bulk"},
                      (ChunkData(c) for c in chunks), now_ms=now_ms)
    out = []
    for n, chunk in enumerate(chunks):
        claim = ledger.claim(job_id, n, provider=provider, account="demo", now_ms=now_ms)
        if claim.status != "ok" or ledger.accept(job_id, n, attempt=claim.attempt, message_id=f"m{n}",
                                                 failed_indexes=[], now_ms=now_ms) != "ok":
            raise RuntimeError(f"chunk {job_id}:{n} could not be accepted")
        out.append((chunk, client_id(job_id, n, claim.attempt)))
    return out


def interleaved(chunks: list[tuple[list[str], str]], rng: random.Random, window: int = 200) -> list[tuple[str, str]]:
    """Every ``(phone, bid)`` of ``chunks``, shuffled within windows of ``window`` chunks: the order
    in which a busy account's receipts arrive, so 100 consecutive ones name ~90 chunks."""
    out: list[tuple[str, str]] = []
    for w in range(0, len(chunks), window):
        part = [(p, bid) for chunk, bid in chunks[w : w + window] for p in chunk]
        rng.shuffle(part)
        out += part
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Push:
    """One request: path, body, content type, the body a success answers (``None``: any 2xx), and
    ``(state key, index, byte)`` of each receipt it carries (``expect``) or of one (``sample``)."""

    path: str
    body: bytes
    content_type: str
    ok_body: bytes | None
    sample: tuple[str, int] | None = None
    expect: tuple[tuple[str, int, str], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Pushes:
    """What :func:`build_pushes` made: the pushes in send order and what they should do to the ledger."""

    pushes: list[Push]
    receipts: int
    delivered: int
    jobs: tuple[str, str]  # opass job, aiofish job


def build_pushes(ledger: Ledger, total: int, now_ms: int, *, per_push: int = 100, tag: str = "push",
                 aiofish_every: int = 5, sample_every: int = 0, expect: bool = False) -> Pushes:
    """Store accepted jobs and build ``total`` pushes of their receipts, each receipt pushed once.

    Push ``i`` is an aiofish report (one receipt, in the demo account's
    ``push_variant``) when ``i % aiofish_every == aiofish_every - 1``, else an
    opass status push of ``per_push`` receipts of ~90 chunks. Every
    ``sample_every``-th opass push names one of its receipts in ``sample``;
    with ``expect`` every push lists all of its receipts.
    """
    aiofish_n = total // aiofish_every if aiofish_every else 0
    opass_n = total - aiofish_n
    rng = random.Random(9)
    opass_job, fish_job = f"{tag}ko", f"{tag}ka"
    opass = interleaved(accepted_job(ledger, opass_job, opass_n * per_push, provider="opass", seed=21,
                                     now_ms=now_ms), rng)
    fish = interleaved(accepted_job(ledger, fish_job, max(aiofish_n, 1), provider="aiofish", seed=22,
                                    now_ms=now_ms), rng)
    index = chunk_index(ledger, opass_job) if sample_every or expect else {}
    if expect:
        index.update(chunk_index(ledger, fish_job))
    keys = ledger.keys
    fish_account = dataclasses.replace(parse_config(initial_config()).aiofish_accounts[creds.AIOFISH_ACCOUNT],
                                       push_mode=accounts_doc("")["aiofish"][0]["push_variant"])

    def where(phone: str, bid: str) -> tuple[str, int]:
        parsed = parse_client_id(bid)
        if parsed is None:
            raise RuntimeError(f"not one of our ids: {bid}")
        return keys.chunk_states(parsed[0], parsed[1]), index[phone]

    now_s = now_ms / 1000
    pushes: list[Push] = []
    delivered = o = f = 0
    for i in range(total):
        if aiofish_every and i % aiofish_every == aiofish_every - 1:
            phone, bid = fish[f]
            f += 1
            state = "DELIVRD" if rng.random() < DELIVERED_SHARE else "UNDELIV"
            delivered += state == "DELIVRD"
            report = push_payloads.aiofish_report(Receipt(bid, phone, state, now_s, bid))
            job = push_payloads.aiofish_push(fish_account, "report", report, AIOFISH_PATH, now_ms)
            wanted: tuple[tuple[str, int, str], ...] = (
                ((*where(phone, bid), "D" if state == "DELIVRD" else "F"),) if expect else ())
            pushes.append(Push(AIOFISH_PATH, job.body, job.content_type, b"0", expect=wanted))
            continue
        batch = opass[o : o + per_push]
        receipts = []
        for phone, bid in batch:
            state = "DELIVRD" if rng.random() < DELIVERED_SHARE else "UNDELIV"
            delivered += state == "DELIVRD"
            receipts.append(Receipt(f"m{bid}", phone, state, now_s, bid))
        sample = where(*batch[-1]) if sample_every and (o // per_push) % sample_every == 0 else None
        wanted = tuple((*where(r.phone, r.client_id or ""), "D" if r.state == "DELIVRD" else "F")
                       for r in receipts) if expect else ()
        o += per_push
        job = push_payloads.opass_status(creds.OPASS_API_KEY, receipts, OPASS_PATH)
        pushes.append(Push(OPASS_PATH, job.body, job.content_type, None, sample, wanted))
    return Pushes(pushes, o + f, delivered, (opass_job, fish_job))


def chunk_index(ledger: Ledger, job_id: str) -> dict[str, int]:
    """Each phone's index in its chunk, read back from the ledger."""
    out: dict[str, int] = {}
    for n in range(int(ledger.job(job_id)["chunks"])):
        text = ledger.chunk(job_id, n)["phones"]
        for i in range(0, len(text), PHONE_WIDTH):
            out[text[i : i + PHONE_WIDTH]] = i // PHONE_WIDTH
    return out


def applied_once(ledger: Ledger, built: Pushes) -> dict[str, int]:
    """How the pushed receipts ended: ``delivered``/``failed``/``accepted`` as the jobs' counters say
    and as their per-phone states say (``states_*``), and ``counter_drift``: the sum of the
    differences (a receipt applied twice counts twice in the counters but once in the states)."""
    counts: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for job_id in built.jobs:
        c = ledger.counts(job_id)
        for key in ("delivered", "failed", "accepted"):
            counts[key] += c[key]
        states.update(state for _, state in ledger.phone_states(job_id))
    out = {k: counts[k] for k in ("delivered", "failed", "accepted")}
    out.update({f"states_{k}": states[k] for k in ("delivered", "failed", "accepted")})
    out["counter_drift"] = sum(abs(counts[k] - states[k]) for k in ("delivered", "failed", "accepted"))
    return out


def check_applied(ledger: Ledger, built: Pushes) -> None:
    """Raise ``RuntimeError`` unless every pushed receipt was applied exactly once (counters and states)."""
    got = applied_once(ledger, built)
    want = {"delivered": built.delivered, "failed": built.receipts - built.delivered}
    if any(got[k] != v or got[f"states_{k}"] != v for k, v in want.items()) or got["counter_drift"]:
        raise RuntimeError(f"pushed {built.receipts} receipts ({built.delivered} delivered) but the ledger shows {got}")
