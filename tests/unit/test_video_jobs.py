"""Video SMS (vsms) jobs before anything is stored: the checks name the field, the fake refuses
what production refuses, the estimate counts one message per recipient, CLI frames are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.errors import ValidationError
from dispatcher.providers.aiofish.vsms import EXT_FILE, EXT_TEXT
from dispatcher.providers.aiofish.vsms_templates import frames_of
from dispatcher.template_audits import APPROVED, PENDING, REJECTED
from dispatcher.testing import FakeDispatcher

PHONES = ["13800000001", "13800000002", "13800000003"]


def _fields(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [p.field for p in exc.value.problems]


def test_a_video_job_takes_the_form_the_call_has_and_keeps_the_uuid_as_its_tag() -> None:
    """phones → aiofish-vsms.message, recipients → aiofish-vsms.vars with each phone's values."""
    fake = FakeDispatcher()
    fake.send_video("demo", template_id="tpl1", phones=PHONES, uuid="campaign-7")
    fake.send_video("demo", template_id="tpl2", recipients=[(p, ["张三", "12"]) for p in PHONES])
    plain, filled = fake.outbox
    assert (plain.kind, plain.tag, plain.template_code, plain.phones) == (
        "aiofish-vsms.message", "campaign-7", "tpl1", PHONES)
    assert (filled.kind, filled.per_phone) == ("aiofish-vsms.vars", {p: ["张三", "12"] for p in PHONES})


@pytest.mark.parametrize(("call", "field"), [
    ({"template_id": " tpl ", "phones": PHONES}, "template_id"),
    ({"template_id": "tpl", "phones": PHONES, "uuid": "has space"}, "uuid"),
    ({"template_id": "tpl", "recipients": [(PHONES[0], ["x" * 16])]}, "recipients[0].vars[0]"),
    ({"template_id": "tpl", "recipients": [(PHONES[0], ["a"] * 6)]}, "recipients[0].vars"),
    ({"template_id": "tpl", "recipients": [(PHONES[0], ["a"]), (PHONES[1], ["a", "b"])]}, "recipients[1]"),
    ({"template_id": "tpl", "phones": ["12345"]}, "phones[0]"),
])
def test_a_video_send_the_gateway_would_refuse_is_refused_naming_the_field(call: dict[str, object],
                                                                           field: str) -> None:
    fake = FakeDispatcher()
    with pytest.raises(ValidationError) as caught:
        fake.send_video("demo", **call)  # type: ignore[arg-type]
    assert field in _fields(caught)
    assert fake.outbox == []


@pytest.mark.parametrize(("state", "refused"), [(PENDING, True), (REJECTED, True), (APPROVED, False)])
def test_a_template_known_pending_or_rejected_is_refused_naming_template_id(state: int, refused: bool) -> None:
    fake = FakeDispatcher()
    fake.set_template_audit("demo", "tpl", state, "画面不清晰")
    if refused:
        with pytest.raises(ValidationError) as caught:
            fake.send_video("demo", template_id="tpl", phones=PHONES)
        assert _fields(caught) == ["template_id"]
    else:
        fake.send_video("demo", template_id="tpl", phones=PHONES)
    assert len(fake.outbox) == (0 if refused else 1)


def test_a_video_sends_estimate_is_one_message_per_recipient_however_many_frames() -> None:
    estimate = FakeDispatcher().estimate("video", "demo", template_id="tpl",
                                         recipients=[(p, ["很长的变量值十五个字符以内"]) for p in PHONES])
    assert (estimate.recipients, estimate.segments, estimate.kind) == (3, 3, "aiofish-vsms.vars")


def test_cli_frames_are_text_or_a_file_read_from_disk_in_the_order_given(tmp_path: Path) -> None:
    picture = tmp_path / "pic.png"
    picture.write_bytes(b"\x89PNG")
    frames, files = frames_of(["text:您好，#p_1#", f"file:{picture}"])
    assert [(f.frame_index, f.ext_type, f.text) for f in frames] == [(1, EXT_TEXT, "您好，#p_1#"),
                                                                     (2, EXT_FILE, "pic.png")]
    assert files == {"pic.png": b"\x89PNG"}
    with pytest.raises(ValidationError) as caught:
        frames_of(["text:ok", "video:x", f"file:{tmp_path / 'missing.mp4'}"])
    assert _fields(caught) == ["frames[1]", "frames[2]"]
