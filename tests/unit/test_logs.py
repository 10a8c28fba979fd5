"""Log lines never carry a whole phone number or a secret."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from dispatcher.logs import configure, mask_text


@pytest.fixture(autouse=True)
def _logging_to_the_real_stderr_afterwards() -> Iterator[None]:
    # Torn down after capsys: loggers configured inside a test write to capsys's
    # buffer, which is closed once the test ends; a later test would log into it.
    yield
    configure("INFO")
    structlog.reset_defaults()  # no logger cached under this test's configuration (capture_logs needs that)


def test_phones_inside_any_text_are_masked() -> None:
    assert mask_text("sent to 13812345678 and +8613912345678, id 2023123456789") == \
        "sent to 138****5678 and 139****5678, id 2023123456789"


def test_a_log_line_masks_phones_and_redacts_secret_named_fields(capsys) -> None:  # type: ignore[no-untyped-def]
    configure("INFO")
    structlog.get_logger("t").info("push", phone="13812345678", detail={"access_key": "k", "to": "13912345678"},
                                   password="hunter2", job_id="abc")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["phone"] == "138****5678"
    assert line["detail"] == {"access_key": "[redacted]", "to": "139****5678"}
    assert line["password"] == "[redacted]"
    assert line["job_id"] == "abc"


def test_url_query_strings_are_dropped_from_any_text() -> None:
    line = 'http://gw:80 "GET /rest/sms/getReport?account=a&password=911b7bf55b HTTP/1.1" 200 90'
    assert mask_text(line) == 'http://gw:80 "GET /rest/sms/getReport?[query] HTTP/1.1" 200 90'
    assert mask_text("Max retries exceeded with url: /x?password=abc (Caused by E)") == \
        "Max retries exceeded with url: /x?[query] (Caused by E)"
    assert mask_text("ready? yes = go") == "ready? yes = go"


def test_a_log_field_holding_a_url_loses_its_query(capsys) -> None:  # type: ignore[no-untyped-def]
    configure("INFO")
    structlog.get_logger("t").info("fetch", url="https://gw/rest/sms/getReport?account=a&password=911b7bf55b")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["url"] == "https://gw/rest/sms/getReport?[query]"
