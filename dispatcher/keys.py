"""Every Redis key sms-dispatch uses, built in this one module.

Layout (``P`` = the configured prefix, ``smsd`` by default)::

    P:job:{job}                 HASH  job meta + per-state counters (c:pending …)
    P:job:{job}:c:{n}           HASH  chunk: state, size, attempt, phones, payloads, mid, since,
                                      ix (phone index while receipts are due), settled_from,
                                      ra / ux (attempts released after an ambiguous send /
                                      after a provable non-send: what receipts may name), qf (the
                                      attempt whose receipts a reconcile query found), cap / ct
                                      (phones a frequency cap held back at the latest claim / the
                                      cap counts that claim holds)…
    P:job:{job}:c:{n}:st        STRING one byte per phone once the chunk is accepted, rejected or cancelled
    P:job:{job}:c:{n}:rec       STRING five bytes per phone: code index (into the chunk's ``codes``) and
                                      the time of its last change (offset from the chunk's ``t0``)
    P:mid:{provider}:{msgid}    STRING "{job}:{n}": the chunk a vendor message id names (TTL = the job's)
    P:ph:{day}:{bucket}         HASH  phone -> 7-byte refs (job number, chunk) of the jobs created that
                                      UTC day that include it; expires with the day's last job
    P:ph:{day}:jobs             HASH  job number -> job id, for the day's refs
    P:ph:days                   ZSET  days with a phone index, by the ms their index expires
    P:seq:job                   STRING the last job number handed out (INCR)
    P:out                       STREAM final outcomes: one entry per chunk and change, the phones'
                                      indexes packed (capped at ``SMSD_OUTCOME_FEED_MAX`` entries)
    P:z:events                  ZSET  "{job}|submitted" / "{job}|finished" job events not yet handed to
                                      the app's task (``SMSD_ON_JOB_EVENT``), by the ms they happened
    P:jobs                      ZSET  job ids by the ms they expire (trimmed as they do)
    P:z:scheduled               ZSET  job ids by the ms they are due (send_at in the future)
    P:z:pending                 ZSET  "{job}:{n}" by the ms a task for it is due (orphan sweep)
    P:z:sending                 ZSET  "{job}:{n}" by ms the chunk entered sending (stuck sweep)
    P:z:ambiguous               ZSET  "{job}:{n}" by ms its reconcile window ends
    P:z:awaiting                ZSET  "{job}:{n}" by ms accepted (72 h unknown sweep)
    P:acct:{provider}:{name}:paused   STRING reason ("operator: …" for an operator's pause); no TTL: a resume
                                      clears it, or beat's balance check if it is not an operator's
    P:bal:{provider}:{name}     STRING "{remaining}:{ms read}": the account's balance as last read by a producer
                                      (TTL ``SMSD_BALANCE_CACHE_S``)
    P:rl:{provider}:{name}:{kind}     STRING GCRA theoretical arrival time (TTL = one period)
    P:rlslow:{provider}:{name}:{kind} STRING slow-down factor after a throttle code (TTL decays)
    P:mo:{provider}:{name}      LIST  uplink (MO) messages, newest first, capped
    P:mo:seen:{provider}:{name}:{fp}  STRING an uplink already kept (its fingerprint): a push repeated is
                                      not kept or acted on twice (TTL ``UPLINK_SEEN_TTL_S``)
    P:sup:{provider}:{name}     SET   the account's suppression list: phones that replied an unsubscribe
                                      keyword (or an operator added); no TTL. One per accounts-file
                                      entry: its channels (video, international SMS) share it
    P:tpl:{provider}:{name}:{tpl}     STRING JSON {state, reason, at_ms}: a template's audit result as last
                                      pushed or queried (vsms: 100 pending, 200 approved, 400 rejected;
                                      TTL ``TEMPLATE_AUDIT_TTL_S``, renewed by each push or query)
    P:route:{id}                HASH  a route send: route, template, params (JSON), priority, send_at, and
                                      ``j:{job}`` -> "provider:account" per job it stored (TTL = its jobs')
    P:route:{id}:v              HASH  phone -> JSON values of a per-phone route send (same TTL)
    P:routes                    ZSET  route send ids by the ms they expire (trimmed by the failover)
    P:route:down:{provider}:{name}    STRING ms the failover first saw a route's account paused (deleted
                                      once it is not): the route's cooldown counts from there
    P:cap:{provider}:{name}:{priority}:{E}:{epoch}:{bucket}
                                HASH  phone -> its last send times under that entry's caps of that
                                      job priority (4-byte epoch seconds, oldest first, up to the
                                      largest count); E = the largest window, epoch = now // E; a
                                      claim reads this epoch's and the last one's; expires at the
                                      end of the next epoch (dispatcher/caps.py)
    P:stats                     HASH  process-wide counters (late receipts, duplicates seen…)
    P:rx                        STREAM receipts recorded by the webhook and the polls, waiting to be
                                      applied (consumer group ``apply``); an entry is deleted in
                                      the same step that applies it, so the stream holds only backlog

Job and chunk keys expire ``SMSD_JOB_TTL_S`` (default ``JOB_TTL_S``) after
creation, or after the send time of a scheduled job: longer than the 72 h
receipt horizon plus a margin for the status to be read afterwards.

No index outlives what it indexes: ``P:jobs`` is trimmed by its score (the
expiry) whenever a job is stored and on every sweep; each ``P:z:*`` member is
removed by its own sweep well before its job expires (stuck after minutes,
ambiguous after the reconcile window, awaiting at the receipt horizon, which
settings keep shorter than the job TTL), and a pending member whose job is gone
is dropped by the orphan sweep when it comes due. So sweeps, resume and status
cost what the live jobs cost, not the history.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Default of ``SMSD_JOB_TTL_S``.
JOB_TTL_S = 8 * 24 * 3600
LIMITER_MIN_TTL_S = 60
MO_MAX_ITEMS = 10_000
#: How long an uplink's fingerprint is remembered: longer than a vendor retries a push.
UPLINK_SEEN_TTL_S = 3 * 24 * 3600
#: Buckets of a day's phone index: Redis keeps a hash of up to 128 short fields as a compact
#: list (``hash-max-ziplist-entries``), ~19 bytes a phone; 16,384 of them hold 2M phones a
#: day that compactly (past that a bucket becomes a hash table, several times larger).
PHONE_BUCKETS = 16_384
DAY_MS = 86_400_000


def phone_bucket_of(phone: str) -> int:
    """The bucket of a day's phone index a phone lives in (its number mod ``PHONE_BUCKETS``). Pure."""
    return int(phone) % PHONE_BUCKETS if phone.isascii() and phone.isdigit() else 0


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds keys under one prefix (tests and several deployments can share a Redis)."""

    prefix: str = "smsd"

    def job(self, job_id: str) -> str:
        """The job's meta/counter hash."""
        return f"{self.prefix}:job:{job_id}"

    def chunk(self, job_id: str, n: int) -> str:
        """Chunk ``n`` of a job."""
        return f"{self.prefix}:job:{job_id}:c:{n}"

    def chunk_parts(self) -> tuple[str, str]:
        """``(head, middle)`` with ``head + job_id + middle + str(n)`` == :meth:`chunk` (for a script
        that finds chunks through refs: its state and record keys add ``:st`` / ``:rec``)."""
        return f"{self.prefix}:job:", ":c:"

    def chunk_states(self, job_id: str, n: int) -> str:
        """One byte per phone of chunk ``n`` (A accepted, X rejected, D, F, U)."""
        return f"{self.prefix}:job:{job_id}:c:{n}:st"

    def chunk_record(self, job_id: str, n: int) -> str:
        """Five bytes per phone of chunk ``n``: its code index and the time of its last change."""
        return f"{self.prefix}:job:{job_id}:c:{n}:rec"

    def message(self, provider: str, message_id: str) -> str:
        """The chunk a vendor message id names."""
        return f"{self.prefix}:mid:{provider}:{message_id}"

    def template_audit(self, provider: str, account: str, tpl_id: str) -> str:
        """A template's audit result as last pushed or queried."""
        return f"{self.prefix}:tpl:{provider}:{account}:{tpl_id}"

    def phone_bucket(self, day: int, bucket: int) -> str:
        """One bucket of a day's phone index (phones hashed into ``PHONE_BUCKETS``)."""
        return f"{self.prefix}:ph:{day}:{bucket}"

    def phone_jobs(self, day: int) -> str:
        """Job number -> job id for a day's phone index."""
        return f"{self.prefix}:ph:{day}:jobs"

    def phone_index_head(self) -> str:
        """``head`` with ``head + f"{day}:{bucket}"`` == :meth:`phone_bucket` and ``head + f"{day}:jobs"``
        == :meth:`phone_jobs` (for the lookup script, which finds the live days itself)."""
        return f"{self.prefix}:ph:"

    def phone_days(self) -> str:
        """Days that have a phone index, scored by the ms it expires."""
        return f"{self.prefix}:ph:days"

    def job_sequence(self) -> str:
        """Counter handing out job numbers (the phone index refers to jobs by number: 4 bytes, not 16)."""
        return f"{self.prefix}:seq:job"

    def outcome_feed(self) -> str:
        """The stream of final outcomes the app reads with ``Dispatcher.outcomes``."""
        return f"{self.prefix}:out"

    def job_events(self) -> str:
        """Job events waiting to be handed to the app's task."""
        return f"{self.prefix}:z:events"

    def jobs(self) -> str:
        """Live jobs by the epoch ms they expire (members of expired jobs are trimmed)."""
        return f"{self.prefix}:jobs"

    def scheduled(self) -> str:
        """Jobs with a future send time, scored by when they are due."""
        return f"{self.prefix}:z:scheduled"

    def pending(self) -> str:
        """Pending chunks, scored by when a task for them is due; the sweep nudges overdue ones."""
        return f"{self.prefix}:z:pending"

    def sending(self) -> str:
        """Chunks in flight, scored by when they started sending."""
        return f"{self.prefix}:z:sending"

    def ambiguous(self) -> str:
        """Ambiguous chunks, scored by the end of their reconcile window."""
        return f"{self.prefix}:z:ambiguous"

    def awaiting(self) -> str:
        """Accepted chunks still awaiting receipts, scored by acceptance time."""
        return f"{self.prefix}:z:awaiting"

    def paused(self, provider: str, account: str) -> str:
        """Set while an account is paused after an account-fatal error."""
        return f"{self.prefix}:acct:{provider}:{account}:paused"

    def balance(self, provider: str, account: str) -> str:
        """The account's balance as last read by a producer, and when (the send guard's cache)."""
        return f"{self.prefix}:bal:{provider}:{account}"

    def limiter(self, provider: str, account: str, kind: str) -> str:
        """GCRA state of one limit of one account."""
        return f"{self.prefix}:rl:{provider}:{account}:{kind}"

    def slowdown(self, provider: str, account: str, kind: str) -> str:
        """Slow-down factor applied after the gateway answered a throttle code."""
        return f"{self.prefix}:rlslow:{provider}:{account}:{kind}"

    def uplinks(self, provider: str, account: str) -> str:
        """Uplink (MO) messages received for an account."""
        return f"{self.prefix}:mo:{provider}:{account}"

    def uplink_seen(self, provider: str, account: str, fingerprint: str) -> str:
        """Set once an uplink with this fingerprint was kept (a repeated push is then ignored)."""
        return f"{self.prefix}:mo:seen:{provider}:{account}:{fingerprint}"

    def suppressed(self, provider: str, account: str) -> str:
        """The suppression list of an accounts-file entry (:func:`dispatcher.suppression.list_owner`)."""
        return f"{self.prefix}:sup:{provider}:{account}"
    def cap_head(self, scope: str, priority: str, epoch_s: int) -> str:
        """``head`` with ``head + f"{epoch}:{bucket}"`` the key of one bucket of an epoch's cap counts
        (``scope`` = the accounts-file entry's ``provider:name``); the claim script builds them."""
        return f"{self.prefix}:cap:{scope}:{priority}:{epoch_s}:"

    def stats(self) -> str:
        """Process-wide counters."""
        return f"{self.prefix}:stats"

    def route_job(self, route_id: str) -> str:
        """A route send's hash: route, template, values, ``j:{job}`` → ``provider:account`` per job."""
        return f"{self.prefix}:route:{route_id}"

    def route_values(self, route_id: str) -> str:
        """A per-phone route send's values: phone → JSON list (what a failover sends again)."""
        return f"{self.prefix}:route:{route_id}:v"

    def route_jobs(self) -> str:
        """Route send ids by the ms they expire (what the failover looks through)."""
        return f"{self.prefix}:routes"

    def failing(self, provider: str, account: str) -> str:
        """Set while a worker sees an account's calls fail too often (:mod:`dispatcher.account_health`)."""
        return f"{self.prefix}:acct:{provider}:{account}:failing"

    def route_down(self, provider: str, account: str) -> str:
        """When the failover first saw a route account paused (ms): its cooldown starts there."""
        return f"{self.prefix}:route:down:{provider}:{account}"

    def receipt_stream(self) -> str:
        """Receipts recorded (pushed or pulled) and not yet applied; no TTL: entries are deleted when applied."""
        return f"{self.prefix}:rx"


def chunk_member(job_id: str, n: int) -> str:
    """The member naming a chunk in the sweep sorted sets."""
    return f"{job_id}:{n}"


def parse_chunk_member(member: str) -> tuple[str, int]:
    """Inverse of :func:`chunk_member`; raises ``ValueError`` if malformed."""
    job_id, _, n = member.rpartition(":")
    if not job_id or not (n.isascii() and n.isdigit()):
        raise ValueError(f"not a chunk member: {member!r}")
    return job_id, int(n)


def client_id(job_id: str, n: int, attempt: int) -> str:
    """The bid/smsId sent with a chunk attempt; echoed back in its receipts.

    The attempt number is part of it so a receipt tells which submission it
    belongs to: a receipt for an attempt older than the current one is proof of
    a duplicate. Fits aiofish's 32-character smsId limit.
    """
    return f"{job_id}.{n}.{attempt}"


def parse_client_id(value: str) -> tuple[str, int, int] | None:
    """``(job_id, chunk_no, attempt)`` from a bid/smsId we generated, else ``None``."""
    parts = value.split(".")
    if len(parts) != 3 or not parts[0] or not all(p.isascii() and p.isdigit() for p in parts[1:]):
        return None
    return parts[0], int(parts[1]), int(parts[2])
