"""Time formats the gateways use, all in China Standard Time (UTC+8, no DST). Pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")


def arrive_time(epoch_s: float) -> str:
    """opass ``arriveTime``: ``yyMMddHHmm``."""
    return datetime.fromtimestamp(epoch_s, CST).strftime("%y%m%d%H%M")


def send_date(epoch_s: float) -> str:
    """opass statistics ``sendDate``: ``yyyy-MM-dd``."""
    return datetime.fromtimestamp(epoch_s, CST).strftime("%Y-%m-%d")


def vsms_time(epoch_s: float) -> str:
    """vsms push ``revTime``: ``2021-12-06T19:00:00``."""
    return datetime.fromtimestamp(epoch_s, CST).strftime("%Y-%m-%dT%H:%M:%S")


def isms_time(epoch_s: float) -> str:
    """isms push ``revTime``: ``2021-12-06 19:00:00``."""
    return datetime.fromtimestamp(epoch_s, CST).strftime("%Y-%m-%d %H:%M:%S")


def parse_date(text: object) -> datetime | None:
    """Parse ``yyyy-MM-dd`` (opass statistics); ``None`` if malformed."""
    if not isinstance(text, str) or len(text) != 10:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=CST)
    except ValueError:
        return None


def parse_send_time(text: object) -> float | None:
    """Parse ``yyyy-MM-dd HH:mm:ss`` (aiofish sendTime, vsms scheduleTime) to epoch seconds.

    Raises ``ValueError`` if ``text`` is a string in another format; ``None``/"" give ``None``.
    """
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ValueError("send time must be a string")
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST).timestamp()
