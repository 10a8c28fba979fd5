"""Pure sandbox state: receipt queues, statistics, ledger, message log, config, push bodies, aiofish checks."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from dispatcher.local.sandbox import demo
from dispatcher.local.sandbox.aiofish_checks import AiofishReject, decrypt_mobiles, open_encrypted
from dispatcher.local.sandbox.config import deep_merge, initial_config, parse_config
from dispatcher.local.sandbox.defaults import DEFAULTS
from dispatcher.local.sandbox.messages import MessageLog, MessageRecord
from dispatcher.local.sandbox.push_payloads import aiofish_push, aiofish_report, is_success, opass_status
from dispatcher.local.sandbox.receipts import OutcomeMix, Receipt, ReceiptBatch, ReceiptStore
from dispatcher.local.sandbox.state import LazyCounter, NonceStore, SandboxState
from dispatcher.providers.aiofish.crypto import aes_decrypt_hex, aes_encrypt_hex, biz_sign

ALL_DELIVERED = OutcomeMix.from_mapping({"DELIVRD": 1.0})


def batch(msg_id: str, n: int, due_s: float = 0.0, bid: str | None = None) -> ReceiptBatch:
    numbers = ",".join(f"1380000{i:04d}" for i in range(n))
    return ReceiptBatch("opass", "k", msg_id, bid, numbers, n, due_s, ALL_DELIVERED, 1)


def test_pull_returns_each_due_receipt_once_up_to_the_limit() -> None:
    store = ReceiptStore()
    store.add(batch("m1", 700), to_pull=True, to_push=False)
    store.add(batch("m2", 10, due_s=100.0), to_pull=True, to_push=False)
    first = store.take_pull(("opass", "k"), 1.0, 600, 3600)
    second = store.take_pull(("opass", "k"), 1.0, 600, 3600)
    assert (len(first), len(second)) == (600, 100)
    assert len({r.phone for r in first + second}) == 700
    assert store.take_pull(("opass", "k"), 1.0, 600, 3600) == []  # m2 not due yet
    assert len(store.take_pull(("opass", "k"), 100.0, 600, 3600)) == 10
    assert store.pending() == {"pull": 0, "push": 0}


def test_pull_filters_and_window() -> None:
    store = ReceiptStore()
    store.add(batch("m1", 2, bid="a"), to_pull=True, to_push=False)
    store.add(batch("m2", 2, bid="b"), to_pull=True, to_push=False)
    assert {r.msg_id for r in store.take_pull(("opass", "k"), 1.0, 600, 3600, frozenset({"m2"}))} == {"m2"}
    assert store.take_pull(("opass", "k"), 1.0, 600, 3600, client_id="b") == []
    assert store.take_pull(("opass", "k"), 7200.0, 600, 3600) == []  # m1 arrived > window ago: dropped


def test_forced_states_and_statistics() -> None:
    store = ReceiptStore()
    forced = ReceiptBatch("opass", "k", "m", None, ["13800000001", "bad"], 2, 5.0, ALL_DELIVERED, 1, {1: "REJECTD"})
    store.add(forced, to_pull=False, to_push=True, day="2024-01-02")
    assert store.statistics("k", "2024-01-01", "2024-01-31", 1.0)[0]["noReceiptCount"] == 2
    got = store.take_push(("opass", "k"), 5.0, 100)
    assert [(r.phone, r.state) for r in got] == [("13800000001", "DELIVRD"), ("bad", "REJECTD")]
    [row] = store.statistics("k", "2024-01-01", "2024-01-31", 5.0)
    assert (row["totalCount"], row["successCount"], row["failCount"], row["noReceiptCount"]) == (2, 1, 1, 0)


def test_lazy_ledger_and_nonces() -> None:
    counter = LazyCounter(fold_at=5)
    counter.add("a,b", 2)
    counter.add(["a"], 1)
    assert counter.pending_count == 3 and not counter.counts
    counter.add("c,c,a", 3)  # past fold_at: the oldest batches are counted down to 4 pending
    assert counter.counts == {"a": 1, "b": 1} and counter.pending_count == 4
    assert counter.snapshot() == {"a": 3, "b": 1, "c": 2} and not counter.pending
    nonces = NonceStore()
    assert nonces.fresh("k", "n", 0.0, 120.0) and not nonces.fresh("k", "n", 119.0, 120.0)
    assert nonces.fresh("other", "n", 119.0, 120.0) and nonces.fresh("k", "n", 120.0, 120.0)


def test_message_log_keeps_about_the_last_n_messages() -> None:
    log = MessageLog(max_messages=3)
    for i in range(4):
        log.add(MessageRecord("opass", "k", f"m{i}", None, f"1380000000{i},13900000000", 2, f"t{i}", float(i)))
    assert [m["message_id"] for m in log.for_phone("13900000000")] == ["m2", "m3"]


def test_config_merges_validates_and_resets() -> None:
    merged = deep_merge(DEFAULTS, {"limits": {"opass_send": None}, "outcomes": {"UNKNOWN": 1}})
    assert merged["limits"]["opass_query"] == DEFAULTS["limits"]["opass_query"]
    assert merged["outcomes"] == {"UNKNOWN": 1}  # replaced whole, not merged
    parse_config(merged)
    for bad in ({"receipt_mode": "x"}, {"seed": -1}, {"aiofish": {"accounts": {"sandbox": {"push_mode": "x"}}}}):
        with pytest.raises(ValueError):
            parse_config(deep_merge(DEFAULTS, bad))
    state = SandboxState(initial_config(time_scale=0.5))
    state.update_config({"opass": {"accounts": {demo.OPASS_API_KEY: {"balance": {"行业短信": 7}}}}})
    assert state.opass_balance[demo.OPASS_API_KEY]["行业短信"] == 7
    state.reset()
    assert state.config.time_scale == 0.5 and state.opass_balance[demo.OPASS_API_KEY]["行业短信"] == 100_000_000


def test_the_example_config_file_shows_exactly_the_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "sandbox.example.json"
    assert initial_config(example) == DEFAULTS


def test_push_bodies_in_each_vendor_format() -> None:
    receipt = Receipt("sms-1", "13800000001", "REJECTD", 1_700_000_000.0, "bid-1")
    status = json.loads(opass_status("key", [receipt], "http://h").body)
    assert status == {"apiKey": "key", "data": [{"msgId": "sms-1", "tel": "13800000001", "arriveResult": "REJECTD",
                                                 "arriveTime": "2311150613", "bid": "bid-1"}]}
    fish = parse_config(DEFAULTS).aiofish_accounts[demo.AIOFISH_ACCOUNT]
    plain = aiofish_push(fish, "report", aiofish_report(receipt), "http://h", 1)
    assert parse_qs(plain.body.decode())["stat"] == ["6"] and plain.retry_delays_s == (300.0, 600.0, 3600.0)
    full = aiofish_push(parse_config(deep_merge(DEFAULTS, {"aiofish": {"accounts": {demo.AIOFISH_ACCOUNT: {
        "push_mode": "full"}}}})).aiofish_accounts[demo.AIOFISH_ACCOUNT], "report", aiofish_report(receipt),
        "http://h", 1)
    envelope = json.loads(full.body)
    assert json.loads(aes_decrypt_hex(demo.AIOFISH_AES_KEY, envelope["bizContent"]))["revTime"] == 1_700_000_000_000
    assert full.retry_delays_s == (60.0, 300.0, 600.0, 3600.0)
    assert is_success(full, 500, b" 0 ") and not is_success(full, 200, b"OK")
    assert is_success(opass_status("k", [receipt], "http://h"), 204, b"")


def test_encrypted_mobiles_in_both_readings() -> None:
    key = demo.AIOFISH_AES_KEY
    each = [aes_encrypt_hex(key, "13800000001"), aes_encrypt_hex(key, "13800000002")]
    assert decrypt_mobiles(key, ",".join(each)) == (each, ["13800000001", "13800000002"])
    assert decrypt_mobiles(key, aes_encrypt_hex(key, "13800000001,13800000002")) == (each, ["13800000001",
                                                                                          "13800000002"])
    with pytest.raises(AiofishReject) as caught:
        decrypt_mobiles(key, "00ff")
    assert caught.value.sub_stat == "p:011"


def test_encrypted_envelope_checks_sign_then_time_then_content() -> None:
    fish = parse_config(DEFAULTS).aiofish_accounts[demo.AIOFISH_ACCOUNT]
    biz = aes_encrypt_hex(demo.AIOFISH_AES_KEY, json.dumps({"mobile": "13800000001"}))
    sign = biz_sign(account=fish.account, app_secret=demo.AIOFISH_APP_SECRET, biz_content=biz, ts="1000")
    body = {"account": fish.account, "ts": "1000", "bizContent": biz, "sign": sign}
    assert open_encrypted(fish, body, 1000 + 299_000, 300)[1] == {"mobile": "13800000001"}
    for case, now_ms in (({**body, "sign": "0" * 64}, 1000), (body, 1000 + 301_000)):
        with pytest.raises(AiofishReject) as caught:
            open_encrypted(fish, case, now_ms, 300)
        assert caught.value.sub_stat == "p:003"
