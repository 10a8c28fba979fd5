"""The vsms and isms clients without a network: the signed requests they put on the wire."""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from dispatcher.errors import AmbiguousError, ConfigurationError, TransientError
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.crypto import x_sign
from dispatcher.providers.aiofish.vsms import AiofishIsmsClient, AiofishVsmsClient, Frame
from tests.unit.scripted import ScriptedAdapter
from tests.unit.test_aiofish_requests import BASE, NOW_MS, SECRET, answer, make_account, recording_session

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


def test_an_account_with_an_app_key_but_no_secret_cannot_make_a_client() -> None:
    account = AiofishAccount(name="n", account="a", password="p", app_key="k", base_url="http://aiofish.test")
    with pytest.raises(ConfigurationError) as err:
        AiofishVsmsClient(account)
    assert str(err.value) == "aiofish:n needs app_key and app_secret for vsms/isms"


def test_the_template_submit_is_a_post() -> None:
    client, adapter = vsms(answer({"code": "success", "tplId": "tpl-9"}))
    client.submit_template("t", [Frame.of_text(1, 1, "x")], {})
    assert adapter.requests[0].method == "POST"


def test_send_vars_and_isms_pass_the_uuid_and_schedule_time_on() -> None:
    client, adapter = vsms()
    result = client.send_vars("tpl-9", [("13800000001", ["1"])], uuid="u-1", schedule_time="2030-01-01 08:00:00")
    _, body = signed_json(adapter)
    assert body == {"appKey": APP_KEY, "ts": str(NOW_MS), "tplId": "tpl-9",
                    "mobiles": [{"phone": "13800000001", "vars": ["1"]}], "uuid": "u-1",
                    "scheduleTime": "2030-01-01 08:00:00"}
    assert (result.account, result.client_id) == ("unit", "u-1")
    client, adapter = isms()
    client.send("hi", ["85212341234"], uuid="u-2", schedule_time="2030-01-01 08:00:00")
    _, body = signed_json(adapter)
    assert (body["uuid"], body["scheduleTime"]) == ("u-2", "2030-01-01 08:00:00")


def test_the_status_of_a_template_the_answer_does_not_name_is_the_one_asked_about() -> None:
    client, _ = vsms(answer({"code": "success", "auditStatus": 200}))
    assert client.template_status("tpl-9").tpl_id == "tpl-9"


class _Timeouts(ScriptedAdapter):
    """Records the timeout each request was sent with."""

    def __init__(self, *answers: tuple[int, bytes]) -> None:
        super().__init__(*answers)
        self.timeouts: list[object] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.timeouts.append(kwargs.get("timeout"))
        return super().send(request, *args, **kwargs)


def test_requests_use_the_accounts_connect_and_read_timeouts() -> None:
    adapter = _Timeouts(SENT)
    session = requests.Session()
    session.mount(BASE, adapter)
    account = make_account(connect_timeout_s=1.5, read_timeout_s=7.0)
    AiofishIsmsClient(account, session=session, clock_ms=lambda: NOW_MS).send("hi", ["85212341234"])
    assert adapter.timeouts == [(1.5, 7.0)]


class _LostAnswer(ScriptedAdapter):
    """Takes the request, then the answer never arrives."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        raise requests.exceptions.ReadTimeout("no answer")


def _lost() -> tuple[AiofishVsmsClient, AiofishIsmsClient]:
    session = requests.Session()
    session.mount(BASE, _LostAnswer())
    return (AiofishVsmsClient(make_account(), session=session, clock_ms=lambda: NOW_MS),
            AiofishIsmsClient(make_account(), session=session, clock_ms=lambda: NOW_MS))


def test_a_lost_answer_is_ambiguous_for_sends_and_submits_and_transient_for_a_status_query() -> None:
    """A send or submit may have been taken (never resend blindly); a status query may simply be asked again."""
    video, text = _lost()
    for call in (lambda: video.send("tpl-9", ["13800000001"]), lambda: text.send("hi", ["85212341234"]),
                 lambda: video.submit_template("t", [Frame.of_text(1, 1, "x")], {})):
        with pytest.raises(AmbiguousError) as err:
            call()
        assert err.value.account == "unit"
    with pytest.raises(TransientError) as status:
        video.template_status("tpl-9")
    assert not isinstance(status.value, AmbiguousError)
    assert (status.value.provider, status.value.account) == ("aiofish-vsms", "unit")


def test_a_garbled_answer_is_ambiguous_for_sends_and_submits_and_transient_for_a_status_query() -> None:
    garbled = (200, b"<html>busy</html>")
    calls: list[tuple[Any, Any]] = [
        (vsms, lambda c: c.send("tpl-9", ["13800000001"])),
        (isms, lambda c: c.send("hi", ["85212341234"])),
        (vsms, lambda c: c.submit_template("t", [Frame.of_text(1, 1, "x")], {})),
    ]
    for make, call in calls:
        client, _ = make(garbled)
        with pytest.raises(AmbiguousError) as err:
            call(client)
        assert (err.value.provider, err.value.account) == (client.provider, "unit")
    client, _ = vsms(garbled)
    with pytest.raises(TransientError) as status:
        client.template_status("tpl-9")
    assert not isinstance(status.value, AmbiguousError)


def test_client_errors_name_the_product_and_the_account() -> None:
    client, _ = vsms(answer({"code": "success"}))
    with pytest.raises(AmbiguousError) as sent:
        client.send("tpl-9", ["13800000001"])
    assert (sent.value.provider, sent.value.account) == ("aiofish-vsms", "unit")
    client, _ = vsms(answer({"code": "success"}))
    with pytest.raises(AmbiguousError) as submitted:
        client.submit_template("t", [Frame.of_text(1, 1, "x")], {})
    assert submitted.value.account == "unit"
    client, _ = vsms(answer({"code": "success", "auditStatus": "?"}))
    with pytest.raises(TransientError) as status:
        client.template_status("tpl-9")
    assert status.value.account == "unit"
    client, _ = isms((500, b"oops"))
    with pytest.raises(AmbiguousError) as http:  # the transport names them too
        client.send("hi", ["85212341234"])
    assert (http.value.provider, http.value.account) == ("aiofish-isms", "unit")
