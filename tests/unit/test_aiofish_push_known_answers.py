"""aiofish pushes built by hand from the manual (003_…, 推送状态/上行): exactly the documented forms pass.

tests/unit/test_aiofish_push.py builds its pushes with our own AES and sign code; a bug on both
sides would pass there. Here every encrypted piece is a literal made with the openssl CLI and
every sign is SHA256 computed in the test by hashlib from the manual's recipe, so the parser is
checked against code that is not its own. Each push must also be in the account's
``push_variant`` (README, "Security: what a push can and cannot do"): a form cannot stand in
for a signed push, nor a plain phone for an encrypted one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from dispatcher.errors import PushVerificationError
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.push import TemplateAudit, parse_sms_push, parse_vsms_push
from dispatcher.providers.results import Receipt, Uplink
from tests.unit.test_crypto_known_answers import MANUAL_SIGN, MANUAL_SIGN_INPUT

NAME, APP_SECRET, AES_KEY = "sandbox", "sandbox-app-secret", "sandbox-aes-k128"
ACCOUNT = AiofishAccount(name="unit", account=NAME, password="pw-secret", app_key="sandbox-app-key",
                         app_secret=APP_SECRET, aes_key=AES_KEY, encryption="full")
FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json;charset=utf-8"
TS = 1_698_636_410_000
DAY_MS = 24 * 3600 * 1000  # the default window

# The manual's samples (推送状态/上行(加密版), 原始数据).
PHONE = "17530663764"
SMS_ID = "03e2c9e81a54416ba2a046eac6f52b63"
REPLY_ID = "8b8a8939d5424bd0ad60aea59e995434"
REPORT = {"stat": 6, "smsId": SMS_ID, "phoneNumber": PHONE, "statDes": "REJECTD", "revTime": 1698636405820}
DELIVER = {"phoneNumber": PHONE, "content": "R", "subCode": "123", "smsId": REPLY_ID}
MANUAL_RECEIPT = Receipt("aiofish", SMS_ID, PHONE, "REJECTD", False, 1698636405820, SMS_ID, "6")
MANUAL_UPLINK = Uplink("aiofish", PHONE, "R", "123", None, REPLY_ID)

# AES/ECB/PKCS5 with the account's key, from the openssl CLI (K = the key's bytes as hex):
#   printf '%s' TEXT | openssl enc -aes-128-ecb -nosalt -K $(printf '%s' sandbox-aes-k128 | xxd -p) | xxd -p
# TEXT = 17530663764:
PHONE_HEX = "37d91460e675f68c3dd40f2236713979"
# the same phone under another key (-K of another-key-16by):
PHONE_OTHER_KEY_HEX = "eaa1e0560d399c9c7c7f76bab06185d1"
# TEXT = json.dumps(REPORT, separators=(",", ":")):
REPORT_HEX = ("c37037f7d146b3b3d2dcb5ea5fd8d30a509665e3b9b8714811e4ee91d9d8f1acc79c0eaff6f897a36917eedebabb7602"
              "b046f1f55acd1636db598d792521bed5df4dd8d36d0dac6cdba163b572e7bcc39eebf1143275f40928ce0034c860ac7d"
              "2a908fcebee3e273c40231ca3234e73df7087020b16fd61076215de88c1c208b")
# TEXT = json.dumps(DELIVER, separators=(",", ":")):
DELIVER_HEX = ("7f32ca04d84dd1ad0ffe1b683441717ec6f4047e08eb0b5a051f62975444d871931620b9e0c1f917f6ebc65d36813558"
               "4c9ccf25415526a2c30eb7c27c8d00ecdbd331d35298564f79c0e6f4597c7153177984027f8595e7204e964ff8e9e599"
               "462cc6e226d64c7122dad970b0ef0d30")
# TEXT = '{"stat":6,"smsId":"03e2c9e81a54416ba2a046eac6f52b63","phoneNumber":"1","statDes":"REJECTD"}':
BAD_PHONE_REPORT_HEX = ("c37037f7d146b3b3d2dcb5ea5fd8d30a509665e3b9b8714811e4ee91d9d8f1acc79c0eaff6f897a36917eedeb"
                        "abb7602b046f1f55acd1636db598d792521bed5071bd72c4a6a250482bce6f21065ae0122e50384d3c515cf9e3f"
                        "fb189ca1b06f")
# TEXT = '{"phoneNumber":"17530663764","content":5,"smsId":"8b8a8939d5424bd0ad60aea59e995434"}':
NUMERIC_CONTENT_HEX = ("7f32ca04d84dd1ad0ffe1b683441717ec6f4047e08eb0b5a051f62975444d871b6aacd3c32c40de91d1fa5b3b73a"
                       "f7ba9c11835c268ddd70104ba174be381ac56a8f20f1d5c95a54b2b9884fc68819baa2a39f1bbff5094395345b73c3c5b82c")
LIST_HEX = "e22b5ab51ff88b090aa672179ed4ab25"  # TEXT = [1]
NOT_JSON_HEX = "ae3b6fedc7e9204a27cc9dc7d5b47354"  # TEXT = not json


def manual_sign(*, account: str, app_secret: str, biz_content: str, ts: str) -> str:
    """The manual's sign: the four fields sorted by name (TreeMap), joined ``k=v`` by ``&``, SHA256 hex."""
    text = f"account={account}&appSecret={app_secret}&bizContent={biz_content}&ts={ts}"
    return hashlib.sha256(text.encode()).hexdigest()


def sealed(biz: str, *, ts: str | int = TS, account: str = NAME, secret: str = APP_SECRET,
           drop: tuple[str, ...] = (), sign: str | None = None) -> bytes:
    """A fully encrypted push around the ciphertext ``biz``, signed by hand."""
    doc = {"account": account, "ts": str(ts), "bizContent": biz,
           "sign": sign or manual_sign(account=account, app_secret=secret, biz_content=biz, ts=str(ts))}
    return json.dumps({k: v for k, v in doc.items() if k not in drop}).encode()


def form(obj: dict[str, Any], **changes: Any) -> bytes:
    """The form-encoded push of ``obj`` with some fields changed (``None`` drops one)."""
    fields = {k: str(v) for k, v in {**obj, **changes}.items() if v is not None}
    return urlencode(fields).encode()


def parse(body: bytes, ctype: str = FORM, *, variant: str | None, now_ms: int = TS, **kw: Any) -> Receipt | Uplink:
    return parse_sms_push(body, ctype, ACCOUNT, now_ms=now_ms, variant=variant, **kw)


def refusal(body: bytes, ctype: str = FORM, *, variant: str | None, account: AiofishAccount = ACCOUNT,
            **kw: Any) -> str:
    """The message of the PushVerificationError the push is refused with."""
    with pytest.raises(PushVerificationError) as err:
        parse_sms_push(body, ctype, account, now_ms=kw.pop("now_ms", TS), variant=variant, **kw)
    message = str(err.value)
    for secret in (PHONE, APP_SECRET, AES_KEY):
        assert secret not in message
    return message


def test_the_hand_made_sign_reproduces_the_manuals_vector() -> None:
    """The test's own sign helper is the manual's recipe: it gives the manual's sample sign."""
    assert manual_sign(**MANUAL_SIGN_INPUT) == MANUAL_SIGN


# -- the documented forms, each in its own variant ----------------------------------------------------


@pytest.mark.parametrize("variant", ["full", None])
def test_the_manuals_sealed_report_and_deliver_read_whole(variant: str | None) -> None:
    """A hand-sealed report and deliver read field for field as the manual's samples say."""
    assert parse(sealed(REPORT_HEX), JSON_TYPE, variant=variant) == MANUAL_RECEIPT
    assert parse(sealed(DELIVER_HEX), JSON_TYPE, variant=variant) == MANUAL_UPLINK


@pytest.mark.parametrize("variant", ["phone", None])
def test_the_phone_encrypted_form_reads_whole(variant: str | None) -> None:
    """phoneNumber as openssl's AES hex (upper or lower case) opens to the phone."""
    assert parse(form(REPORT, phoneNumber=PHONE_HEX), variant=variant) == MANUAL_RECEIPT
    assert parse(form(DELIVER, phoneNumber=PHONE_HEX.upper()), variant=variant) == MANUAL_UPLINK


@pytest.mark.parametrize("variant", ["plain", None])
def test_the_plain_form_reads_whole(variant: str | None) -> None:
    assert parse(form(REPORT), variant=variant) == MANUAL_RECEIPT
    assert parse(form(DELIVER), variant=variant) == MANUAL_UPLINK


def test_a_sealed_push_is_recognised_by_its_brace_even_after_whitespace() -> None:
    """A JSON body sent with another content type, even after a newline, is the sealed form, not a form."""
    assert parse(b"\r\n " + sealed(REPORT_HEX), "text/plain", variant="full") == MANUAL_RECEIPT


def test_the_window_is_inclusive_at_its_edge_either_way() -> None:
    """A ts exactly max_age away (past or future) passes; one millisecond more is refused."""
    for now in (TS + DAY_MS, TS - DAY_MS):
        assert parse(sealed(REPORT_HEX), JSON_TYPE, variant="full", now_ms=now) == MANUAL_RECEIPT
    for now in (TS + DAY_MS + 1, TS - DAY_MS - 1):
        assert refusal(sealed(REPORT_HEX), JSON_TYPE, variant="full", now_ms=now) == (
            "ts is outside the accepted window of 86400 s (stale or replayed)")


# -- a push in another variant than the account's ---------------------------------------------------------


VARIANT_REFUSALS: dict[str, tuple[bytes, str, str, str]] = {
    # An unsigned form, whatever its phone, cannot stand in for a signed push.
    "plain form to a full account": (form(REPORT), FORM, "full",
                                     "an unsigned form push, but the account's push_variant is full"),
    "phone form to a full account": (form(REPORT, phoneNumber=PHONE_HEX), FORM, "full",
                                     "an unsigned form push, but the account's push_variant is full"),
    "sealed push to a plain account": (sealed(REPORT_HEX), JSON_TYPE, "plain",
                                       "a fully encrypted push, but the account's push_variant is plain"),
    "sealed push to a phone account": (sealed(REPORT_HEX), JSON_TYPE, "phone",
                                       "a fully encrypted push, but the account's push_variant is phone"),
    # The phone variant takes only a phone the account's key opens: a plain number is no proof of the key.
    "plain phone to a phone account": (form(REPORT), FORM, "phone",
                                       "phoneNumber is neither a mobile number nor one encrypted with the account's "
                                       "key"),
    "plain phone in a deliver to a phone account": (
        form(DELIVER), FORM, "phone",
        "phoneNumber is neither a mobile number nor one encrypted with the account's key"),
    "encrypted phone to a plain account": (form(REPORT, phoneNumber=PHONE_HEX), FORM, "plain",
                                           "phoneNumber is not a mobile number (the account's push_variant is plain)"),
    "encrypted phone in a deliver to a plain account": (
        form(DELIVER, phoneNumber=PHONE_HEX), FORM, "plain",
        "phoneNumber is not a mobile number (the account's push_variant is plain)"),
}


@pytest.mark.parametrize(("body", "ctype", "variant", "message"), VARIANT_REFUSALS.values(),
                         ids=VARIANT_REFUSALS.keys())
def test_a_push_in_another_variant_is_refused(body: bytes, ctype: str, variant: str, message: str) -> None:
    """Each form is taken only by an account whose console sends that form, and the refusal says so."""
    assert refusal(body, ctype, variant=variant) == message


# -- forged, stale and malformed: each refusal exact -------------------------------------------------------


REFUSALS: dict[str, tuple[bytes, str, str | None, str]] = {
    "body not JSON": (b'{"account": ', JSON_TYPE, "full", "body is not valid JSON"),
    "body a JSON list": (b"[]", JSON_TYPE, None, "body is not a JSON object"),
    "envelope without ts and sign": (sealed(REPORT_HEX, drop=("ts", "sign")), JSON_TYPE, "full",
                                     "encrypted push lacks ts, sign"),
    "envelope of another account": (sealed(REPORT_HEX, account="api003"), JSON_TYPE, "full",
                                    "encrypted push names another account"),
    "sign made with another secret": (sealed(REPORT_HEX, secret="forged-secret"), JSON_TYPE, "full",
                                      "sign does not match"),
    "sign of the manual's sample": (sealed(REPORT_HEX, sign=MANUAL_SIGN), JSON_TYPE, "full", "sign does not match"),
    # Full-width digits are digits to Python's int() but no epoch milliseconds: refused even if signed.
    "ts in full-width digits": (sealed(REPORT_HEX, ts="１６９８６３６４１００００"), JSON_TYPE, "full",
                                "ts is outside the accepted window of 86400 s (stale or replayed)"),
    "ts not a number": (sealed(REPORT_HEX, ts="yesterday"), JSON_TYPE, "full",
                        "ts is outside the accepted window of 86400 s (stale or replayed)"),
    "bizContent under another key": (sealed(PHONE_OTHER_KEY_HEX), JSON_TYPE, "full",
                                     "bizContent does not decrypt with the account's key"),
    "bizContent not JSON": (sealed(NOT_JSON_HEX), JSON_TYPE, "full", "bizContent is not JSON"),
    "bizContent a JSON list": (sealed(LIST_HEX), JSON_TYPE, "full", "bizContent is not a JSON object"),
    "sealed report whose phone is no mobile": (sealed(BAD_PHONE_REPORT_HEX), JSON_TYPE, "full",
                                               "phoneNumber is neither a mobile number nor one encrypted with the "
                                               "account's key"),
    "form not UTF-8": (b"phoneNumber=\xff", FORM, "plain", "body is not a valid UTF-8 form"),
    # A field without "=" is no form field: the whole body is refused, not the field skipped.
    "form with a bare word": (form(REPORT) + b"&garbage", FORM, "plain", "body is not a valid UTF-8 form"),
    "empty form": (b"", FORM, "plain", "push is neither a report (stat) nor a deliver (content)"),
    "report without phoneNumber": (form(REPORT, phoneNumber=None), FORM, "plain", "push lacks phoneNumber"),
    "report with an empty phoneNumber": (form(REPORT, phoneNumber=""), FORM, "plain", "push lacks phoneNumber"),
    "phone under another key": (form(REPORT, phoneNumber=PHONE_OTHER_KEY_HEX), FORM, "phone",
                                "phoneNumber is neither a mobile number nor one encrypted with the account's key"),
    "report with stat ok": (form(REPORT, stat="ok"), FORM, "plain", "report stat is missing or not a number"),
    "report with stat in full-width digits": (form(REPORT, stat="０"), FORM, "plain",
                                              "report stat is missing or not a number"),
    "report with an empty stat": (form(REPORT, stat=""), FORM, "plain", "report stat is missing or not a number"),
    "report without smsId": (form(REPORT, smsId=None), FORM, "plain", "report lacks smsId"),
    "neither report nor deliver": (form({"phoneNumber": PHONE, "smsId": SMS_ID}), FORM, "plain",
                                   "push is neither a report (stat) nor a deliver (content)"),
}


@pytest.mark.parametrize(("body", "ctype", "variant", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_each_refusal_says_exactly_what_is_wrong(body: bytes, ctype: str, variant: str | None, message: str) -> None:
    """The whole message names the field and the fault, never the phone, secret or key."""
    assert refusal(body, ctype, variant=variant) == message


def test_a_sealed_deliver_whose_content_is_not_text_is_refused() -> None:
    """Only the sealed form carries JSON types: a number as reply content is refused, not stringified."""
    assert refusal(sealed(NUMERIC_CONTENT_HEX), JSON_TYPE, variant="full") == "deliver content is not text"


def test_an_account_with_a_secret_but_no_aes_key_cannot_open_a_sealed_push() -> None:
    """Both secrets are needed: the sign alone proves nothing about a body the account cannot open."""
    half = AiofishAccount(name="unit", account=NAME, password="pw-secret", app_secret=APP_SECRET)
    assert refusal(sealed(REPORT_HEX), JSON_TYPE, variant="full", account=half) == (
        "account has no app_secret and aes_key to open an encrypted push")


# -- what a report and a reply carry ---------------------------------------------------------------------


@pytest.mark.parametrize(("stat", "status", "delivered"), [
    ("0", "DELIVRD", True), (" 0 ", "DELIVRD", True), ("6", "6", False), ("-1", "-1", False)])
def test_a_report_without_stat_des_is_named_by_its_stat(stat: str, status: str, delivered: bool) -> None:
    """stat 0 (success, per the manual) reads DELIVRD; any other stat, even a negative one, is its own status."""
    receipt = parse(form(REPORT, stat=stat, statDes=None), variant="plain")
    assert receipt == Receipt("aiofish", SMS_ID, PHONE, status, delivered, 1698636405820, SMS_ID, stat.strip())


def test_an_empty_reply_is_an_uplink_with_empty_content() -> None:
    """``content=`` is an (empty) reply, not a missing field: the user did answer."""
    assert parse(form(DELIVER, content=""), variant="plain") == Uplink("aiofish", PHONE, "", "123", None, REPLY_ID)


def test_a_reply_carrying_rev_time_keeps_it() -> None:
    """revTime (ms, as on pulled replies) is the reply's time; without it the time is unknown."""
    uplink = parse(form(DELIVER, revTime=1616429743000), variant="plain")
    assert uplink == Uplink("aiofish", PHONE, "R", "123", 1616429743000, REPLY_ID)


# -- vsms ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "status", "delivered"), [(0, "DELIVRD", True), (1, "1", False),
                                                            ("3", "3", False)])
def test_a_vsms_status_without_stat_des_is_named_by_its_state(state: object, status: str, delivered: bool) -> None:
    receipt = parse_vsms_push(json.dumps({"msgId": "88f07db153f24a638779", "phone": "18000000000",
                                          "state": state}).encode())
    assert receipt == Receipt("aiofish-vsms", "88f07db153f24a638779", "18000000000", status, delivered, None, None,
                              str(state))


@pytest.mark.parametrize(("body", "message"), [
    (b'{"msgId":"m","phone":"18000000000","state":"zero"}', "state is missing or not a number"),
    (b'{"phone":"18000000000","state":0}', "status push lacks msgId"),
    (b'{"msgId":"m","phone":"1800000000","state":0}', "status push phone is missing or not a valid number"),
    (b'{"tplId":" ","state":200}', "audit push has an empty tplId"),
])
def test_vsms_refusals_say_exactly_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(PushVerificationError) as err:
        parse_vsms_push(body)
    assert str(err.value) == message


def test_an_audit_without_a_reason_has_an_empty_reason() -> None:
    assert parse_vsms_push(b'{"tplId":"t1","state":200}') == TemplateAudit("t1", 200, "")


# -- numbers longer than Python converts -------------------------------------------------------------------

HUGE = "1" * 5000  # past the 4300 digits int() reads from text: a ValueError of its own, not a refusal


def test_a_number_too_long_to_read_is_refused_as_no_number() -> None:
    """A 5000-digit stat, state or ts is refused with the parser's own message; a revTime like it is no time."""
    assert refusal(form(REPORT, stat=HUGE), variant="plain") == "report stat is missing or not a number"
    assert parse(form(REPORT, revTime=HUGE), variant="plain") == Receipt(
        "aiofish", SMS_ID, PHONE, "REJECTD", False, None, SMS_ID, "6")
    assert refusal(sealed(REPORT_HEX, ts=HUGE), JSON_TYPE, variant="full") == (
        "ts is outside the accepted window of 86400 s (stale or replayed)")
    with pytest.raises(PushVerificationError) as err:
        parse_vsms_push(json.dumps({"msgId": "m", "phone": "18000000000", "state": HUGE}).encode())
    assert str(err.value) == "state is missing or not a number"


def test_a_signed_negative_ts_is_no_time_even_near_now() -> None:
    """ts is epoch milliseconds, digits only: "-5" is refused even against a clock at 0, where it lies 5 ms away."""
    assert refusal(sealed(REPORT_HEX, ts="-5"), JSON_TYPE, variant="full", now_ms=0) == (
        "ts is outside the accepted window of 86400 s (stale or replayed)")
