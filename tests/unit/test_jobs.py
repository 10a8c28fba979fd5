"""Producer-side validation: every problem named by field and item, nothing stored on error."""

from __future__ import annotations

import pytest

from dispatcher.errors import ValidationError
from dispatcher.providers.aiofish.jobs import content_job
from dispatcher.providers.opass.jobs import template_job
from dispatcher.validation import MAX_PARAM_CHARS

GOOD = ["13800000001", "13800000002"]


def _fields(excinfo: pytest.ExceptionInfo[ValidationError]) -> tuple[str, ...]:
    return excinfo.value.fields


def test_a_template_job_normalises_and_drops_duplicates() -> None:
    spec = template_job("a", template_code="1", phones=["+8613800000001", "13800000001", "13800000002"],
                        params=["x"])
    assert spec.phones == GOOD
    assert spec.duplicates == 1
    assert spec.kind == "opass.send"


def test_every_bad_phone_is_named_with_its_index_and_masked() -> None:
    with pytest.raises(ValidationError) as err:
        template_job("a", template_code="1", phones=["13800000001", "1380000", "abc", "23800000001"])
    assert _fields(err) == ("phones[1]", "phones[2]", "phones[3]")
    assert "23800000001" not in str(err.value)


def test_skip_invalid_keeps_the_good_recipients_and_lists_the_bad() -> None:
    spec = template_job("a", template_code="1", phones=["13800000001", "bad"], skip_invalid=True)
    assert spec.phones == ["13800000001"]
    assert [p.field for p in spec.invalid] == ["phones[1]"]


def test_per_phone_params_must_have_the_same_count() -> None:
    with pytest.raises(ValidationError) as err:
        template_job("a", template_code="1", recipients=[(GOOD[0], ["a", "b"]), (GOOD[1], ["a"])])
    assert _fields(err) == ("recipients[1]",)
    assert "first at recipients[1]" in str(err.value)


def test_param_values_must_be_text() -> None:
    with pytest.raises(ValidationError) as err:
        template_job("a", template_code="1", recipients=[(GOOD[0], ["ok", None])])
    assert _fields(err) == ("recipients[0].params[1]",)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bid": "x" * 65}, "bid"),
        ({"bid": "has space"}, "bid"),
        ({"extend_code": "12a"}, "extend_code"),
        ({"priority": "urgent"}, "priority"),
        ({"template_code": " "}, "template_code"),
    ],
)
def test_template_job_fields_are_checked(kwargs: dict, field: str) -> None:
    args = {"template_code": "1", "phones": GOOD, **kwargs}
    with pytest.raises(ValidationError) as err:
        template_job("a", **args)
    assert field in _fields(err)


def test_a_content_job_needs_a_signature_and_at_most_500_characters() -> None:
    with pytest.raises(ValidationError) as err:
        content_job("a", content="no signature here", phones=GOOD)
    assert _fields(err) == ("content",)
    with pytest.raises(ValidationError) as err:
        content_job("a", content="【签名】" + "字" * 500, phones=GOOD)
    assert "at most 500" in str(err.value)


def test_per_phone_content_is_checked_per_item() -> None:
    with pytest.raises(ValidationError) as err:
        content_job("a", recipients=[(GOOD[0], "【签名】ok"), (GOOD[1], "")])
    assert _fields(err) == ("recipients[1].content",)


@pytest.mark.parametrize(("kwargs", "field"), [({"sms_id": "x" * 33}, "sms_id"), ({"sub_code": "1-2"}, "sub_code")])
def test_content_job_fields_are_checked(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        content_job("a", content="【签名】hi", phones=GOOD, **kwargs)
    assert field in _fields(err)


def test_phones_and_recipients_are_exclusive() -> None:
    with pytest.raises(ValidationError) as err:
        content_job("a", content="【签名】hi", phones=GOOD, recipients=[(GOOD[0], "【签名】x")])
    assert "content" in _fields(err) or "phones" in _fields(err)


def test_chunks_follow_the_gateway_limits() -> None:
    phones = [f"139{i:08d}" for i in range(2500)]
    spec = content_job("a", content="【签名】hi", phones=phones)
    sizes = [len(c.phones) for c in spec.chunks(2000)]
    assert sizes == [2000, 500]
    batch = content_job("a", recipients=[(p, f"【签名】{i}") for i, p in enumerate(phones[:450])])
    chunks = list(batch.chunks(200))
    assert [len(c.phones) for c in chunks] == [200, 200, 50]
    assert chunks[2].payloads is not None and chunks[2].payloads[0] == "【签名】400"


def test_a_template_value_longer_than_the_cap_is_named_with_its_item_and_the_cap() -> None:
    longest = "长" * MAX_PARAM_CHARS
    assert template_job("a", template_code="1", phones=GOOD, params=[longest]).meta["params"]
    with pytest.raises(ValidationError) as err:
        template_job("a", template_code="1", phones=GOOD, params=["ok", longest + "长"])
    assert _fields(err) == ("params[1]",)
    assert f"at most {MAX_PARAM_CHARS}" in str(err.value)
    with pytest.raises(ValidationError) as err:
        template_job("a", template_code="1", recipients=[(GOOD[0], ["a"]), (GOOD[1], [longest + "x"])])
    assert _fields(err) == ("recipients[1].params[0]",)
