"""``sms-dispatch demo``: the whole system on this machine, one campaign, checked end to end.

Starts a redis-server (AOF on), the sandbox (pushing receipts to the webhook),
the webhook under gunicorn, Celery workers and beat; sends a campaign split over
both gateways plus OTPs and a small video SMS (vsms) job while it runs (its template
submitted and approved by the sandbox's audit push first); shows progress; prints each job's funnel
and checks it against the sandbox's ledger (0 lost, 0 duplicated); stops
everything it started.
"""

from __future__ import annotations

import json
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatcher.config.accounts import parse_accounts
from dispatcher.config.settings import Settings
from dispatcher.local.sandbox import demo as creds
from dispatcher.local.sandbox.control import SandboxControl
from dispatcher.local.stack import Stack, wait_for
from dispatcher.producer import Dispatcher, JobHandle

# Path tokens of the demo's local webhook: new random ones in every process that
# writes an accounts file (a published token would be refused, and rightly).
OPASS_HOOK_TOKEN = secrets.token_urlsafe(32)
AIOFISH_HOOK_TOKEN = secrets.token_urlsafe(32)


@dataclass
class DemoResult:
    """What the demo measured: per-job funnels, the ledger check, OTP latencies."""

    funnels: dict[str, dict[str, int]] = field(default_factory=dict)
    lost: int = 0
    duplicated: int = 0
    otp_latency_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing was lost or duplicated and every job reached final states."""
        return self.lost == 0 and self.duplicated == 0


def accounts_doc(sandbox_url: str) -> dict[str, Any]:
    """The demo's accounts file: the sandbox's published credentials."""
    return {
        "opass": [{"name": "demo", "api_key": creds.OPASS_API_KEY, "access_key": creds.OPASS_ACCESS_KEY,
                   "base_url": sandbox_url, "callback_secret": OPASS_HOOK_TOKEN,
                   "limits": {"receipts": [{"kind": "receipts", "count": 60, "window_s": 60}]}}],
        "aiofish": [{"name": "demo", "account": creds.AIOFISH_ACCOUNT, "password": creds.AIOFISH_PASSWORD,
                     "app_key": creds.AIOFISH_APP_KEY, "app_secret": creds.AIOFISH_APP_SECRET,
                     "aes_key": creds.AIOFISH_AES_KEY, "encryption": "full", "base_url": sandbox_url,
                     "callback_secret": AIOFISH_HOOK_TOKEN, "push_variant": "full"}],
    }


def phones(count: int, *, seed: int, prefix: str = "13") -> list[str]:
    """``count`` distinct synthetic mainland numbers (deterministic for ``seed``)."""
    rng = random.Random(seed)
    picked = rng.sample(range(100_000_000), count)
    return [f"{prefix}{rng.choice('3456789')}{n:08d}" for n in picked]


def run_demo(
    *,
    recipients: int = 100_000,
    otps: int = 5,
    videos: int | None = None,
    workers: int = 1,
    concurrency: int | None = None,
    base_dir: str | Path | None = None,
    say: Callable[[str], None] = print,
    timeout_s: float = 900.0,
) -> DemoResult:
    """Run the demo; return what it measured. Everything started is stopped on return.

    ``videos`` is the size of the video SMS job (default :data:`VIDEO_RECIPIENTS`). The workers
    are the Procfile's (a threads pool of ``concurrency`` threads, default ``SMSD_SEND_CONCURRENCY``).
    """
    started = time.monotonic()
    base = Path(base_dir or tempfile.mkdtemp(prefix="smsd-demo-"))
    result = DemoResult()
    with Stack(base, env={"SMSD_DATA_DIR": str(base / "data"), "SMSD_SWEEP_EVERY_S": "2",
                          "SMSD_RECEIPT_TICK_S": "2", "SMSD_RECONCILE_WINDOW_S": "30"}) as stack:
        say(f"[demo] working in {base}")
        redis_url = stack.start_redis()
        say(f"[demo] redis-server up at {redis_url} (AOF on)")
        sandbox_url = stack.start_sandbox()
        accounts_path = base / "accounts.json"
        accounts_path.write_text(json.dumps(accounts_doc(sandbox_url), ensure_ascii=False))
        stack.env["SMSD_ACCOUNTS_FILE"] = str(accounts_path)
        webhook = stack.start_webhook()
        control = SandboxControl(sandbox_url)
        control.configure(**sandbox_settings(webhook))
        say(f"[demo] sandbox at {sandbox_url}, pushing receipts to the webhook at {webhook}")
        for i in range(workers):
            stack.start_worker(f"worker{i + 1}", concurrency=concurrency)
        stack.start_beat()
        threads = concurrency or Settings.from_env(stack.env).send_concurrency
        say(f"[demo] {workers} Celery worker(s) of {threads} threads and beat running")

        settings = Settings.from_env(stack.env)
        dispatcher = Dispatcher(settings, accounts=parse_accounts(accounts_doc(sandbox_url)))
        template = submit_video_template(dispatcher, say)
        handles = send_campaign(dispatcher, recipients, say)
        result.otp_latency_ms = send_otps(dispatcher, otps, say)
        handles.append(send_video(dispatcher, template, VIDEO_RECIPIENTS if videos is None else videos, say))
        watch(dispatcher, handles, say, timeout_s=timeout_s)
        check(dispatcher, control, handles, result, say)
    result.elapsed_s = time.monotonic() - started
    say(f"[demo] stopped everything; {result.elapsed_s:.0f} s in all; "
        f"{'OK' if result.ok else 'FAILED'}: lost {result.lost}, duplicated {result.duplicated}")
    return result


def sandbox_settings(webhook: str) -> dict[str, Any]:
    """Sandbox settings for the demo: fast receipts, pushed to our webhook."""
    return {
        "receipt_delay_s": 1.0,
        "outcomes": {"DELIVRD": 0.94, "UNDELIV": 0.03, "REJECTD": 0.01, "EXPIRED": 0.01, "UNKNOWN": 0.01},
        "opass": {"accounts": {creds.OPASS_API_KEY: {
            "status_url": f"{webhook}/hooks/opass/demo/{OPASS_HOOK_TOKEN}",
            "uplink_url": f"{webhook}/hooks/opass/demo/{OPASS_HOOK_TOKEN}",
        }}},
        "aiofish": {"accounts": {creds.AIOFISH_ACCOUNT: {
            "report_url": f"{webhook}/hooks/aiofish/demo/{AIOFISH_HOOK_TOKEN}",
            "reply_url": f"{webhook}/hooks/aiofish/demo/{AIOFISH_HOOK_TOKEN}",
            "push_mode": "full",
            "isms_status_url": f"{webhook}/hooks/aiofish-isms/demo/{AIOFISH_HOOK_TOKEN}",
            "vsms_status_url": f"{webhook}/hooks/aiofish-vsms/demo/{AIOFISH_HOOK_TOKEN}",
            "vsms_audit_url": f"{webhook}/hooks/aiofish-vsms/demo/{AIOFISH_HOOK_TOKEN}",
        }}},
        "vsms_audit_delay_s": 1.0,
    }


#: Recipients of the demo's video SMS job: two calls of 1000 and one of 500.
VIDEO_RECIPIENTS = 2_500


def submit_video_template(d: Dispatcher, say: Callable[[str], None]) -> str:
    """Submit a two-frame video SMS template (text with a variable, a picture); its audit is pushed later."""
    from dispatcher.providers.aiofish.vsms import Frame
    from dispatcher.providers.aiofish.vsms_templates import submit_template

    frames = [Frame.of_text(1, 1, "#p_1#，您的会员礼包已到账。"), Frame.of_file(2, 1, "gift.png")]
    tpl_id = submit_template(d.runtime, "demo", "会员礼包", frames, {"gift.png": b"\x89PNG demo picture"})
    say(f"[demo] video SMS template {tpl_id} submitted; waiting for its audit push")
    return tpl_id


def send_video(d: Dispatcher, tpl_id: str, count: int, say: Callable[[str], None]) -> JobHandle:
    """Once the audit push has approved the template, queue a per-phone video SMS job."""
    from dispatcher.providers.aiofish.vsms import VSMS
    from dispatcher.template_audits import APPROVED, read_audit

    wait_for(lambda: read_audit(d.redis, d.keys, VSMS, "demo", tpl_id),
             ok=lambda a: a is not None and a.state == APPROVED, timeout_s=60, what="the audit push")
    job = d.send_video("demo", template_id=tpl_id, uuid="demo-video",
                       recipients=[(p, [f"会员{i:04d}"]) for i, p in enumerate(phones(count, seed=4, prefix="17"))])
    say(f"[demo] template {tpl_id} approved by its audit push; video SMS job {job.job_id} "
        f"({job.total}, {job.chunks} chunks)")
    return job


def send_campaign(d: Dispatcher, recipients: int, say: Callable[[str], None]) -> list[JobHandle]:
    """Queue the campaign: 60 % opass per-phone template, 40 % aiofish per-phone content."""
    n_opass = recipients * 6 // 10
    opass_phones = phones(n_opass, seed=1)
    fish_phones = phones(recipients - n_opass, seed=2, prefix="15")
    t0 = time.monotonic()
    a = d.send_template("demo", template_code="1000000000000000003",
                        recipients=[(p, [f"客户{i % 1000}", f"{(i % 97) * 10}.00"])
                                    for i, p in enumerate(opass_phones)])
    b = d.send_content("demo", recipients=[(p, f"【沙箱】您好，您的订单{i:06d}已发货。")
                                           for i, p in enumerate(fish_phones)])
    # Beside it, a small international SMS job (Hong Kong, UK, Singapore numbers; GSM-7 text).
    c = d.send_international("demo", content="Your parcel has shipped. Reply STOP to opt out.",
                             phones=international_phones(ISMS_RECIPIENTS), uuid="demo-isms")
    say(f"[demo] queued {a.total + b.total + c.total} recipients in {time.monotonic() - t0:.1f} s: "
        f"opass job {a.job_id} ({a.total}, {a.chunks} chunks), aiofish job {b.job_id} ({b.total}, {b.chunks} chunks), "
        f"{c.provider} job {c.job_id} ({c.total}, {c.chunks} chunks)")
    return [a, b, c]


#: Recipients of the demo's international SMS job (two calls of up to 1000).
ISMS_RECIPIENTS = 1_500


def international_phones(count: int) -> list[str]:
    """``count`` distinct synthetic international numbers of 10 to 12 digits, with a ``+``."""
    heads = ("852", "4477", "65")
    return [f"+{heads[i % 3]}{9_000_000 + i:07d}" for i in range(count)]


def send_otps(d: Dispatcher, count: int, say: Callable[[str], None]) -> list[float]:
    """Send OTPs during the campaign; return enqueue→accepted latency of each, in ms."""
    latencies = []
    for i, phone in enumerate(phones(count, seed=3, prefix="18")):
        t0 = time.monotonic()
        job = d.send_template("demo", template_code="1000000000000000002", phones=[phone],
                              params=[f"{random.randrange(10**6):06d}"], priority="otp")
        wait_for(lambda: d.status(job.job_id).submitted, timeout_s=60, what=f"OTP {i}", interval_s=0.01)  # noqa: B023
        latencies.append((time.monotonic() - t0) * 1000)
    say(f"[demo] {count} OTPs accepted during the campaign: " +
        ", ".join(f"{ms:.0f} ms" for ms in latencies))
    return latencies


def watch(d: Dispatcher, handles: list[JobHandle], say: Callable[[str], None], *, timeout_s: float) -> None:
    """Print progress every 2 s until every recipient of every job is final."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        statuses = [d.status(h.job_id) for h in handles]
        line = " | ".join(f"{s.provider}: {_progress(s.counts, s.total)}" for s in statuses)
        say(f"[demo] {line}")
        if all(s.finished for s in statuses):
            return
        time.sleep(2)
    raise TimeoutError("the campaign did not finish in time")


def _progress(c: dict[str, int], total: int) -> str:
    final = c["delivered"] + c["failed"] + c["rejected"] + c["unknown"]
    return f"submitted {total - c['pending'] - c['sending']}/{total}, receipts {final}/{total}"


def check(d: Dispatcher, control: SandboxControl, handles: list[JobHandle], result: DemoResult,
          say: Callable[[str], None]) -> None:
    """Print each funnel and compare it with what the sandbox says it accepted."""
    ledger = control.ledger()["accepted"]
    for h in handles:
        st = d.status(h.job_id, phones=True)
        result.funnels[h.job_id] = st.counts
        accepted_here = {d.phone for d in st.phones or [] if d.state in ("accepted", "delivered", "failed", "unknown")}
        at_gateway = ledger[h.provider]  # the sandbox counts per gateway name: opass, aiofish, aiofish-isms…
        lost = sum(1 for p in accepted_here if at_gateway.get(p, 0) == 0)
        dup = sum(1 for d in st.phones or [] if at_gateway.get(d.phone, 0) > 1)
        result.lost += lost
        result.duplicated += dup
        c = st.counts
        say(f"[demo] {h.provider} job {h.job_id}: {st.total} recipients → accepted "
            f"{c['delivered'] + c['failed'] + c['unknown'] + c['accepted']}, delivered {c['delivered']}, "
            f"failed {c['failed']}, rejected {c['rejected']}, unknown {c['unknown']} | "
            f"sandbox ledger: lost {lost}, duplicated {dup}")
