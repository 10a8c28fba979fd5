"""opass pushes (the gateway calls our webhook): pure parsing and verification.

Two kinds arrive, both as JSON ``{"apiKey": …, "data": [ … ]}``:

* status reports, items ``{msgId, tel, arriveResult, arriveTime, bid}``;
* uplinks (replies), items ``{srcId, tel, content, arriveTime}``.

The only proof a push comes from the gateway is the ``apiKey`` it carries, so it
is compared in constant time. ``arriveTime`` is ``yyMMddHHmm`` in Beijing time.
The helpers that read one receipt item are shared with the receipt pull.

The manual gives no answer body for pushes, only a 1-second deadline; we answer
:data:`PUSH_ANSWER_BODY` (``{"code":200,"message":"OK"}``, the gateway's own
success shape) with HTTP 200.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from dispatcher.errors import PushVerificationError
from dispatcher.providers.fields import text_field
from dispatcher.providers.results import Receipt, Uplink

PROVIDER = "opass"
BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
DELIVERED = "DELIVRD"
#: What the webhook answers to every push it accepted (the manual names none).
PUSH_ANSWER_BODY = b'{"code":200,"message":"OK"}'
PUSH_ANSWER_CONTENT_TYPE = "application/json"

_T = TypeVar("_T")
_STATUS_FIELDS = ("msgId", "arriveResult")
_UPLINK_FIELDS = ("content",)
_KIND_NAMES = {"status": "a status report", "uplink": "an uplink"}


def parse_arrive_time(value: object) -> int | None:
    """Epoch milliseconds of an opass ``yyMMddHHmm`` time (Beijing, UTC+8), or ``None`` if unreadable."""
    if not isinstance(value, str) or len(value) != 10 or not (value.isascii() and value.isdigit()):
        return None
    return _arrive_ms(value)


# strptime costs ~10 us, once per receipt: most of a 100-receipt push's parsing.
# The receipts of one push or pull share a few minutes, so a small cache hits.
@functools.lru_cache(maxsize=4096)
def _arrive_ms(value: str) -> int | None:
    try:
        when = dt.datetime.strptime(value, "%y%m%d%H%M").replace(tzinfo=BEIJING)
    except ValueError:
        return None
    return int(when.timestamp()) * 1000


def receipt_from_item(item: Mapping[str, Any], *, status_key: str) -> Receipt | None:
    """A Receipt from one report item, or ``None`` when it lacks msgId, tel or a status.

    ``status_key`` is ``arriveResult`` for pushes and ``arrive`` for pulls (the
    manual names the field differently in each).
    """
    message_id = text_field(item, "msgId")
    phone = text_field(item, "tel")
    status = text_field(item, status_key)
    if message_id is None or phone is None or status is None:
        return None
    return Receipt(
        provider=PROVIDER,
        message_id=message_id,
        phone=phone,
        status=status,
        delivered=status == DELIVERED,
        at_ms=parse_arrive_time(item.get("arriveTime")),
        client_id=text_field(item, "bid"),
    )


def uplink_from_item(item: Mapping[str, Any]) -> Uplink | None:
    """An Uplink from one reply item, or ``None`` when it lacks tel or content."""
    phone = text_field(item, "tel")
    content = item.get("content")
    if phone is None or not isinstance(content, str):
        return None
    return Uplink(
        provider=PROVIDER,
        phone=phone,
        content=content,
        ext=text_field(item, "srcId"),
        at_ms=parse_arrive_time(item.get("arriveTime")),
    )


def verify_api_key(doc: Mapping[str, Any], expected_api_key: str) -> None:
    """Check the push's ``apiKey`` equals ours, in constant time; raise PushVerificationError if not."""
    given = doc.get("apiKey")
    if not isinstance(given, str) or not given:
        raise PushVerificationError("opass push has no apiKey")
    if not hmac.compare_digest(given.encode(), expected_api_key.encode()):
        raise PushVerificationError("opass push apiKey does not match this account")


def push_kind(items: list[Any]) -> str:
    """``"status"`` or ``"uplink"``, decided from the item fields; every item must agree.

    Raises PushVerificationError naming the first item that is of neither or the other kind.
    """
    kinds = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PushVerificationError(f"opass push data[{i}] is not an object")
        if all(k in item for k in _STATUS_FIELDS):
            kinds.append("status")
        elif all(k in item for k in _UPLINK_FIELDS) and "msgId" not in item:
            kinds.append("uplink")
        else:
            raise PushVerificationError(f"opass push data[{i}] is neither a status report nor an uplink")
        if kinds[-1] != kinds[0]:
            raise PushVerificationError(
                f"opass push data[{i}] is {_KIND_NAMES[kinds[-1]]}, data[0] {_KIND_NAMES[kinds[0]]}"
            )
    return kinds[0] if kinds else "status"


def parse_push(body: bytes, *, expected_api_key: str) -> list[Receipt] | list[Uplink]:
    """Verify and read one opass push: status reports become Receipts, replies Uplinks.

    ``body`` is the raw request body. An empty ``data`` list yields ``[]``.
    Raises PushVerificationError for a wrong or missing apiKey, a body that is not
    UTF-8 JSON, or items of the wrong shape (messages name the item, never its
    phone or the key).
    """
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise PushVerificationError("opass push body is not UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise PushVerificationError("opass push body is not a JSON object")
    verify_api_key(doc, expected_api_key)
    items = doc.get("data")
    if not isinstance(items, list):
        raise PushVerificationError("opass push data is not a list")
    if push_kind(items) == "status":
        return [_required(receipt_from_item(item, status_key="arriveResult"), i) for i, item in enumerate(items)]
    return [_required(uplink_from_item(item), i) for i, item in enumerate(items)]


def _required(value: _T | None, index: int) -> _T:
    if value is None:
        raise PushVerificationError(f"opass push data[{index}] lacks a required field (msgId, tel, status or content)")
    return value
