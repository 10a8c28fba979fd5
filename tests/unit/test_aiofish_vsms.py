"""The vsms and isms clients without a network: the signed requests they put on the wire."""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dispatcher.errors import ConfigurationError
from dispatcher.providers.accounts import AiofishAccount
from dispatcher.providers.aiofish_crypto import x_sign
from dispatcher.providers.aiofish_vsms import AiofishIsmsClient, AiofishVsmsClient, Frame
from tests.unit.scripted import ScriptedAdapter
from tests.unit.test_aiofish_requests import NOW_MS, SECRET, answer, make_account, recording_session

APP_KEY = "app-key"
SIGN = x_sign(app_key=APP_KEY, ts=str(NOW_MS), app_secret=SECRET)
SENT = answer({"code": "success", "msgId": "m1"})
TRICKY_VARS = ['a"b\\c', "两行\n文字", "😀x"]


def vsms(*answers: tuple[int, bytes]) -> tuple[AiofishVsmsClient, ScriptedAdapter]:
    session, adapter = recording_session(*(answers or (SENT,)))
    return AiofishVsmsClient(make_account(), session=session, clock_ms=lambda: NOW_MS), adapter


def isms(*answers: tuple[int, bytes]) -> tuple[AiofishIsmsClient, ScriptedAdapter]:
    session, adapter = recording_session(*(answers or (SENT,)))
    return AiofishIsmsClient(make_account(), session=session, clock_ms=lambda: NOW_MS), adapter


def signed_json(adapter: ScriptedAdapter) -> tuple[str, dict[str, Any]]:
    request = adapter.requests[0]
    assert request.method == "POST" and request.headers["x-sign"] == SIGN
    assert request.headers["Content-Type"].startswith("application/json")
    assert isinstance(request.body, bytes)
    return urlsplit(request.url).path, json.loads(request.body)


def test_submit_template_sends_data_json_and_each_file_as_multipart() -> None:
    client, adapter = vsms(answer({"code": "success", "tplId": "tpl-9"}))
    frames = [Frame.of_file(1, 1, "a.jpg"), Frame.of_text(1, 2, '【沙箱】#p_1#您好 "quoted"\n'),
              Frame.of_file(2, 1, "b.mp4")]
    files = {"a.jpg": b"\xff\xd8jpeg", "b.mp4": b"\x00\x00mp4"}
    assert client.submit_template("双十一", frames, files) == "tpl-9"
    request = adapter.requests[0]
    assert urlsplit(request.url).path == "/rest/vsms/v1/tpl" and request.headers["x-sign"] == SIGN
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)  # type: ignore[operator]
    parts = [(p.get_param("name", header="content-disposition"), p.get_filename(), p.get_payload(decode=True))
             for p in message.iter_parts()]
    assert [(name, filename) for name, filename, _ in parts] == [("data", None), ("file", "a.jpg"), ("file", "b.mp4")]
    assert [payload for _, _, payload in parts[1:]] == [b"\xff\xd8jpeg", b"\x00\x00mp4"]
    assert json.loads(parts[0][2]) == {  # type: ignore[arg-type]
        "appKey": APP_KEY, "ts": str(NOW_MS), "title": "双十一",
        "content": [{"orderBy": 1, "frameIndex": 1, "extType": 2, "text": "a.jpg"},
                    {"orderBy": 2, "frameIndex": 1, "extType": 1, "text": '【沙箱】#p_1#您好 "quoted"\n'},
                    {"orderBy": 1, "frameIndex": 2, "extType": 2, "text": "b.mp4"}]}


def test_template_status_is_a_signed_get() -> None:
    client, adapter = vsms(answer({"code": "success", "tplId": "tpl-9", "auditStatus": 100, "auditReason": ""}))
    status = client.template_status("tpl-9")
    request = adapter.requests[0]
    url = urlsplit(request.url)
    assert (request.method, url.path, request.headers["x-sign"]) == ("GET", "/rest/vsms/v1/tpl/status", SIGN)
    assert parse_qs(url.query) == {"appKey": [APP_KEY], "ts": [str(NOW_MS)], "tplId": ["tpl-9"]}
    assert (status.tpl_id, status.audit_status, status.approved) == ("tpl-9", 100, False)


def test_send_posts_the_template_and_phones() -> None:
    client, adapter = vsms()
    result = client.send("tpl-9", ["13800000001", "+8613800000001", "13800000002"], uuid="u-1",
                         schedule_time="2030-01-01 08:00:00")
    path, body = signed_json(adapter)
    assert path == "/rest/vsms/v1/message"
    assert body == {"appKey": APP_KEY, "ts": str(NOW_MS), "tplId": "tpl-9", "mobiles": ["13800000001", "13800000002"],
                    "uuid": "u-1", "scheduleTime": "2030-01-01 08:00:00"}
    assert (result.provider, result.message_id, result.client_id) == ("aiofish-vsms", "m1", "u-1")
    assert result.duplicates == ("13800000001",)


def test_send_vars_posts_each_phone_with_its_values_unchanged() -> None:
    client, adapter = vsms()
    client.send_vars("tpl-9", [("13800000001", TRICKY_VARS), ("13800000002", ["1", "2", "3"])])
    path, body = signed_json(adapter)
    assert path == "/rest/vsms/v1/message/vars"
    assert body["mobiles"] == [{"phone": "13800000001", "vars": TRICKY_VARS},
                               {"phone": "13800000002", "vars": ["1", "2", "3"]}]
    assert "uuid" not in body and "scheduleTime" not in body


def test_isms_posts_content_and_numbers_with_country_codes() -> None:
    client, adapter = isms()
    result = client.send('Hi "there" \\ 😀\nbye', ["+85212341234", "00447911123456", "85212341234"])
    path, body = signed_json(adapter)
    assert path == "/rest/isms/sendIsms"
    assert body == {"appKey": APP_KEY, "ts": str(NOW_MS), "content": 'Hi "there" \\ 😀\nbye',
                    "mobiles": ["85212341234", "447911123456"]}
    assert result.provider == "aiofish-isms" and result.duplicates == ("85212341234",)


@pytest.mark.parametrize("cls", [AiofishVsmsClient, AiofishIsmsClient])
def test_an_account_without_app_key_cannot_make_a_client(cls: type) -> None:
    with pytest.raises(ConfigurationError):
        cls(AiofishAccount(name="n", account="a", password="p", base_url="http://aiofish.test"))
