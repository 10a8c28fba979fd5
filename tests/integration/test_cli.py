"""The `sms-dispatch` command line against a running pipeline, as an operator uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dispatcher.local.demo import phones
from tests.integration.pipeline import Pipeline, pipeline_factory  # noqa: F401 - fixture


def _cli(p: Pipeline, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher", *args], env=p.stack.env, capture_output=True,
                          text=True, timeout=timeout_s)


def test_send_from_csv_then_watch_the_funnel_to_the_end(pipeline_factory, tmp_path: Path) -> None:  # noqa: F811
    p = pipeline_factory(workers=1)
    numbers = phones(3_000, seed=21)
    csv_file = tmp_path / "recipients.csv"
    csv_file.write_text("phone,name,amount\n" + "".join(f"{n},王五,{i}.50\n" for i, n in enumerate(numbers))
                        + "12345,坏号码,1\n")
    sent = _cli(p, "send", "opass", "demo", "--csv", str(csv_file), "--template", "1000000000000000003",
                "--skip-invalid", "--yes")
    assert sent.returncode == 0, sent.stderr
    handle = json.loads(sent.stdout)
    assert (handle["recipients"], handle["invalid_skipped"]) == (3_000, 1)
    assert "storing recipients" in sent.stderr and "recipients[3000].phone" in sent.stderr
    watched = _cli(p, "status", handle["job_id"], "--watch")
    assert watched.returncode == 0 and "3000/3000 submitted" in watched.stdout
    final = json.loads(_cli(p, "status", handle["job_id"], "--json", "--phones", "--reveal-phones").stdout)
    assert sum(final["counts"].values()) == 3_000
    assert {row["phone"] for row in final["phones"]} == set(numbers)


def test_a_bad_job_is_refused_with_the_field_named_and_nothing_queued(pipeline_factory) -> None:  # noqa: F811
    p = pipeline_factory(workers=1, beat=False, webhook=False)
    bad = _cli(p, "send", "aiofish", "demo", "--phones", "13800000001,138000", "--content", "no signature")
    assert bad.returncode != 0
    assert "phones[1]" in bad.stderr and "content" in bad.stderr
    assert p.redis.zcard(p.dispatcher.keys.jobs()) == 0


def test_doctor_and_balance_report_every_account(pipeline_factory) -> None:  # noqa: F811
    p = pipeline_factory(workers=1, beat=False, webhook=False)
    doctor = _cli(p, "doctor")
    assert "opass:demo clock: skew" in doctor.stdout and "aiofish:demo credentials" in doctor.stdout
    assert "ok  redis memory: used" in doctor.stdout and "policy noeviction" in doctor.stdout
    assert "aiofish:demo pushes: callback_secret set (43 characters), push_variant full" in doctor.stdout
    assert "receipts: 0 recorded and not yet applied" in doctor.stdout
    assert doctor.returncode == 0, doctor.stdout
    balance = _cli(p, "balance")
    assert "opass:demo: 行业短信=" in balance.stdout


def test_doctor_names_an_account_whose_callback_secret_was_published(pipeline_factory) -> None:  # noqa: F811
    p = pipeline_factory(workers=1, beat=False, webhook=False, opass={"callback_secret": "demo-opass-hook-token"})
    doctor = _cli(p, "doctor")
    assert doctor.returncode == 1
    assert "BAD opass:demo pushes: callback_secret is a value published" in doctor.stdout
    assert "demo-opass-hook-token" not in doctor.stdout


def test_stats_lists_the_days_sent(pipeline_factory) -> None:  # noqa: F811
    p = pipeline_factory(workers=1, beat=False, webhook=False, limits={
        "statistics": [{"kind": "statistics", "count": 10, "window_s": 1}]})
    job = p.dispatcher.send_template("demo", template_code="1000000000000000001", phones=phones(20, seed=22))
    p.wait(job.job_id, until="submitted", timeout_s=60)
    import datetime as dt

    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d")
    stats = _cli(p, "stats", "demo", "--from", today, "--to", today)
    assert stats.returncode == 0, stats.stderr
    assert f"{today}: total 20" in stats.stdout
