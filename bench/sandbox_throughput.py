"""Throughput of the sandbox's opass ``/message/send`` with 1000 phones per request.

Starts the sandbox as a subprocess (send limit raised via ``--config``), runs N
client threads for D seconds, each with a plain ``requests.Session`` sending
pre-built bodies signed per request with ``opass_sign.signed_headers``, and
prints one JSON object::

    python bench/sandbox_throughput.py [--threads 4] [--duration-s 10] [--phones 1000] [--processes 1]

With ``--processes P`` the threads are spread over P client processes: one
Python client process tops out near one core (the GIL), so on a small machine
the client, not the sandbox, is usually the bottleneck; ``sandbox_cpu_ms_per_request``
shows the sandbox's own cost either way.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from dispatcher.local.sandbox import demo
from dispatcher.providers.opass.sign import new_nonce, signed_headers

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "1000000000000000002"  # 您的验证码是{验证码,6}，5分钟内有效。


def start_sandbox(config_path: str) -> tuple[subprocess.Popen[str], str]:
    """Start the sandbox on a free port; return the process and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.local.sandbox", "--port", "0", "--config", config_path,
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert proc.stdout is not None
    match = re.search(r"listening on (http://\S+)", proc.stdout.readline())
    if not match:
        proc.kill()
        raise RuntimeError("sandbox did not start")
    return proc, match.group(1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BODIES_PER_WORKER = 50


def body_for(worker: int, body_no: int, phones: int) -> bytes:
    """A send body: ``phones`` numbers distinct across workers and bodies (``13`` w bbb iiiii)."""
    numbers = ",".join(f"13{worker % 10}{body_no:03d}{i:05d}" for i in range(phones))
    return json.dumps({"phones": numbers, "templateCode": TEMPLATE, "templateParam": '["123456"]'}).encode()


def worker(url: str, worker_no: int, phones: int, stop_at: float, out: dict[str, int]) -> None:
    """Send until ``stop_at``; count requests, recipients and errors into ``out``."""
    session = requests.Session()
    # Loopback needs no proxy: without this, requests scans os.environ for proxy
    # settings twice per request, which costs the client more than the sandbox spends.
    session.trust_env = False
    bodies = [body_for(worker_no, b, phones) for b in range(BODIES_PER_WORKER)]
    parsed = [json.loads(raw) for raw in bodies]
    sent = 0
    while time.monotonic() < stop_at:
        raw, fields = bodies[sent % BODIES_PER_WORKER], parsed[sent % BODIES_PER_WORKER]
        sent += 1
        headers = signed_headers(api_key=demo.OPASS_API_KEY, access_key=demo.OPASS_ACCESS_KEY, body=fields,
                                 timestamp_ms=int(time.time() * 1000), nonce=new_nonce())
        headers["Content-Type"] = "application/json"
        try:
            answer = session.post(f"{url}/message/send", data=raw, headers=headers, timeout=10).json()
        except (requests.RequestException, ValueError):
            out["errors"] += 1
            continue
        if answer.get("code") == 200:
            out["requests"] += 1
            out["recipients"] += phones
        else:
            out["errors"] += 1


def client_process(url: str, first_worker: int, threads: int, phones: int, stop_at: float,
                   results: multiprocessing.Queue[dict[str, int]]) -> None:
    """Run ``threads`` workers in this process; put their summed counts on ``results``."""
    outs = [{"requests": 0, "recipients": 0, "errors": 0} for _ in range(threads)]
    pool = [threading.Thread(target=worker, args=(url, first_worker + i, phones, stop_at, outs[i]))
            for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put({k: sum(o[k] for o in outs) for k in ("requests", "recipients", "errors")})


def run_clients(url: str, threads: int, processes: int, phones: int, duration_s: float) -> dict[str, int]:
    """Run the client threads (in one or more processes) for ``duration_s``; return summed counts."""
    stop_at = time.monotonic() + duration_s
    if processes <= 1:
        queue: multiprocessing.Queue[dict[str, int]] = multiprocessing.Queue()
        client_process(url, 0, threads, phones, stop_at, queue)
        result: dict[str, int] = queue.get()
        return result
    queue = multiprocessing.Queue()
    share = [threads // processes + (1 if i < threads % processes else 0) for i in range(processes)]
    procs = [multiprocessing.Process(target=client_process,
                                     args=(url, sum(share[:i]), share[i], phones, stop_at, queue))
             for i in range(processes)]
    for p in procs:
        p.start()
    parts = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return {k: sum(part[k] for part in parts) for k in ("requests", "recipients", "errors")}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=1, help="client processes to spread the threads over")
    args = parser.parse_args(argv)
    config = {
        "limits": {"opass_send": {"max": 1_000_000, "window_s": 1.0}},
        "opass": {"accounts": {demo.OPASS_API_KEY: {"balance": {"行业短信": 10**12}}}},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(config, handle)
    proc, url = start_sandbox(handle.name)
    try:
        cpu_before = cpu_seconds(proc.pid)
        started = time.monotonic()
        total = run_clients(url, args.threads, args.processes, args.phones, args.duration_s)
        elapsed = time.monotonic() - started
        sandbox_cpu = cpu_seconds(proc.pid) - cpu_before
        ledger_started = time.monotonic()
        ledger = requests.get(f"{url}/_sandbox/ledger", timeout=60).json()
        ledger_read_s = time.monotonic() - ledger_started
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(handle.name)
    print(json.dumps({
        "requests_per_s": round(total["requests"] / elapsed, 1),
        "recipients_per_s": round(total["recipients"] / elapsed, 1),
        "threads": args.threads,
        "client_processes": args.processes,
        "duration_s": round(elapsed, 2),
        "phones_per_request": args.phones,
        "requests": total["requests"],
        "errors": total["errors"],
        "sandbox_cpu_s": round(sandbox_cpu, 2),
        "sandbox_cpu_ms_per_request": round(1000 * sandbox_cpu / max(1, total["requests"]), 3),
        "ledger_send_requests": ledger["requests"].get("/message/send", 0),
        "ledger_phones": len(ledger["accepted"]["opass"]),
        "ledger_read_s": round(ledger_read_s, 2),
    }))
    return 0 if total["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
