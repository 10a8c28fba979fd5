"""Printing an object that holds phones, message text or secrets shows none of them in clear."""

from __future__ import annotations

import pytest

from dispatcher.config.accounts import AccountConfig
from dispatcher.config.settings import Settings
from dispatcher.ledger import ChunkData, Claim
from dispatcher.providers.aiofish import jobs as aiofish_jobs
from dispatcher.providers.aiofish import requests as aiofish_requests
from dispatcher.providers.aiofish import vsms as aiofish_vsms
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.crypto import password_md5
from dispatcher.providers.opass import jobs as opass_jobs
from dispatcher.providers.opass import requests as opass_requests
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.providers.results import PhoneFailure, Receipt, SendResult, Uplink
from dispatcher.validation import Checker

P1, P2 = "13812345678", "13987654321"
CODE = "493817"
TEXT = f"【沙箱】您的验证码是{CODE}"
SECRETS = ("sandbox-api-key", "sandbox-access-key", "sandbox-password", "sandbox-app-secret", "sandbox-aes-k128",
           password_md5("sandbox-password"), "s3cret-path-token", "redis-pass", "amqp-pass")
OPASS = OpassAccount(name="demo", api_key=SECRETS[0], access_key=SECRETS[1])
AIOFISH = AiofishAccount(name="demo", account="sandbox", password=SECRETS[2], app_key="sandbox-app-key",
                         app_secret=SECRETS[3], aes_key=SECRETS[4], encryption="phone")


def _assert_nothing_in_clear(shown: str, *, phones_masked: bool = True) -> None:
    for secret in (P1, P2, CODE, TEXT, *SECRETS):
        assert secret not in shown, (secret, shown)
    if phones_masked:
        assert "138****5678" in shown, shown


def test_a_claim_shows_its_phones_masked_and_no_payload() -> None:
    _assert_nothing_in_clear(repr(Claim("ok", attempt=1, phones=(P1, P2), payloads=[[CODE], [TEXT]])))


def test_chunk_data_shows_its_phones_masked_and_no_payload() -> None:
    _assert_nothing_in_clear(repr(ChunkData([P1, P2], [[CODE], [TEXT]])))


def test_a_job_spec_shows_no_params_content_or_whole_phone() -> None:
    _assert_nothing_in_clear(repr(opass_jobs.template_job("demo", template_code="1000000000000000002", phones=[P1, P2],
                                                    params=[CODE])))
    _assert_nothing_in_clear(repr(aiofish_jobs.content_job("demo", content=TEXT, phones=[P1, P2])))
    _assert_nothing_in_clear(repr(aiofish_jobs.content_job("demo", recipients=[(P1, TEXT), (P2, TEXT)])))


def test_an_opass_send_plan_and_its_signed_request_show_no_phone_param_or_key() -> None:
    plan = opass_requests.plan_send(OPASS, [P1, P2, P1], "1000000000000000002", [CODE], bid="j.0.1")
    _assert_nothing_in_clear(repr(plan))
    batch = opass_requests.plan_send_batch(OPASS, [(P1, [CODE]), (P2, [CODE])], "1000000000000000002")
    _assert_nothing_in_clear(repr(batch))
    signed = opass_requests.signed_request(OPASS, plan.path, plan.fields, timestamp_ms=1, nonce="H95a7XT1h6")
    _assert_nothing_in_clear(repr(signed), phones_masked=False)
    assert signed.headers["x-sign"] not in repr(signed)


def test_an_opass_send_plan_shows_its_keys_masked_phones_counts_and_bid_exactly() -> None:
    """The whole repr: body keys only, the phones masked with their count, the repeats, the bid."""
    plan = opass_requests.plan_send(OPASS, [P1, P2, P1], "1000000000000000002", [CODE], bid="j.0.1", extend_code="7")
    assert repr(plan) == (
        "SendPlan(path='/message/send', fields=<keys: phones, templateCode, templateParam, upExtendCode, bid>, "
        "phones=(138****5678, 139****4321; 2 in all), duplicates=(138****5678; 1 in all), client_id='j.0.1')"
    )
    many = [P1, P2, "13700000001", "13600000001"]
    batch = opass_requests.plan_send_batch(OPASS, [(p, [CODE]) for p in many], "1000000000000000002")
    # Past three phones only the count shows: a 1000-phone plan does not flood a log line.
    assert repr(batch) == (
        "SendPlan(path='/message/sendBatch', fields=<keys: phonesJson, templateCode, templateParamJson>, "
        "phones=(138****5678, 139****4321, 137****0001, …; 4 in all), duplicates=(; 0 in all), client_id=None)"
    )


def test_an_opass_signed_request_shows_its_path_and_key_names_only_exactly() -> None:
    """The headers hold the api key and the signature, the fields phones and params: only names show."""
    plan = opass_requests.plan_send(OPASS, [P1], "1000000000000000002", [CODE])
    signed = opass_requests.signed_request(OPASS, plan.path, plan.fields, timestamp_ms=1, nonce="H95a7XT1h6")
    assert repr(signed) == (
        "OpassRequest(path='/message/send', fields=<keys: phones, templateCode, templateParam>, "
        "headers=<keys: Content-Type, x-api-key, x-nonce, x-sign-method, x-timestamp, x-sign>)"
    )


@pytest.mark.parametrize("encryption", ["plain", "phone", "full"])
def test_an_aiofish_send_plan_shows_no_phone_text_or_password_hash(encryption: str) -> None:
    account = AiofishAccount(name="demo", account="sandbox", password=SECRETS[2], app_key="sandbox-app-key",
                             app_secret=SECRETS[3], aes_key=SECRETS[4], encryption=encryption)
    _assert_nothing_in_clear(repr(aiofish_requests.plan_send(account, [P1, P2], TEXT, now_ms=1)))
    _assert_nothing_in_clear(repr(aiofish_requests.plan_batch(account, [(P1, TEXT), (P2, TEXT)], now_ms=1)))


@pytest.mark.parametrize(("encryption", "path", "keys", "echo"), [
    ("plain", "/rest/sms/sendSms", "account, password, mobile, content, smsId", 0),
    ("phone", "/rest/sms/sendSmsByEncrypt", "account, password, mobile, content, smsId", 2),
    ("full", "/rest/sms/sendSms/encryption", "account, ts, bizContent, sign", 0),
])
def test_an_aiofish_send_plan_shows_keys_masked_phones_counts_and_sms_id_exactly(
    encryption: str, path: str, keys: str, echo: int
) -> None:
    """The whole repr: body keys only, phones masked with their count, the smsId, the echo's size only."""
    account = AiofishAccount(name="demo", account="sandbox", password=SECRETS[2], app_key="sandbox-app-key",
                             app_secret=SECRETS[3], aes_key=SECRETS[4], encryption=encryption)
    plan = aiofish_requests.plan_send(account, [P1, P2, P1], TEXT, sms_id="j.0.1", now_ms=1)
    assert repr(plan) == (
        f"SendPlan(path='{path}', body=<keys: {keys}>, phones=(138****5678, 139****4321; 2 in all), "
        f"duplicates=(138****5678; 1 in all), sms_id='j.0.1', echo=<{echo} items>)"
    )


def test_a_video_sms_plan_shows_no_phone_or_variable() -> None:
    plan = aiofish_vsms.plan_vsms_vars("sandbox-app-key", "tpl1", [(P1, [CODE]), (P2, [CODE])], now_ms=1)
    _assert_nothing_in_clear(repr(plan))
    _assert_nothing_in_clear(repr(aiofish_vsms.plan_vsms_send("sandbox-app-key", "tpl1", [P1, P2], now_ms=1)))


def test_a_checked_phone_list_shows_its_phones_masked() -> None:
    _assert_nothing_in_clear(repr(Checker().phones([P1, P2, P1], field="phones", limit=1000)))


def test_results_show_phones_masked_and_no_reply_text() -> None:
    _assert_nothing_in_clear(repr(SendResult("opass", "demo", "m1", "j.0.1", accepted=(P1,),
                                             failed=(PhoneFailure(P2, "X", "refused"),), duplicates=(P2,))))
    _assert_nothing_in_clear(repr(Receipt("opass", "m1", P1, "DELIVRD", True)), phones_masked=False)
    _assert_nothing_in_clear(repr(Uplink("aiofish", P1, TEXT)), phones_masked=False)


def test_accounts_and_settings_show_no_secret() -> None:
    _assert_nothing_in_clear(repr(AccountConfig("opass", OPASS, callback_secret=SECRETS[6])), phones_masked=False)
    _assert_nothing_in_clear(repr(AccountConfig("aiofish", AIOFISH, callback_secret=SECRETS[6])),
                             phones_masked=False)
    settings = Settings(redis_url="redis://:redis-pass@cache:6379/0", broker_url="amqp://smsd:amqp-pass@mq//")
    shown = repr(settings)
    _assert_nothing_in_clear(shown, phones_masked=False)
    assert "redis://:***@cache:6379/0" in shown and "amqp://smsd:***@mq//" in shown


def test_a_receipt_stream_entry_and_a_gateway_answer_show_no_phone() -> None:
    from dispatcher.providers.http import HttpAnswer
    from dispatcher.receipt_stream import Entry

    entry = Entry("1-0", "opass:demo", [("j", 0, 1, f"{P1},{P2}", "DF")], 0)
    answer = HttpAnswer(200, f'{{"data": [{{"tel": "{P1}", "content": "{TEXT}"}}]}}'.encode(), 12.0)
    for shown in (repr(entry), repr(answer)):
        _assert_nothing_in_clear(shown, phones_masked=False)
