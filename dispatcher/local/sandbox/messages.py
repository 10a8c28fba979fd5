"""Ring buffer of the messages the sandbox accepted, for ``GET /_sandbox/messages``. Pure.

One record per accepted request (its phones and text(s) shared, not copied);
the oldest records are evicted once more than ``max_messages`` recipients are held.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, eq=False)
class MessageRecord:
    """What one accepted request delivered: one text for all phones, or one per phone."""

    gateway: str
    account: str
    message_id: str
    client_id: str | None
    phones: list[str] | str
    count: int
    texts: str | list[str]
    accepted_s: float
    _list: list[str] | None = field(default=None, repr=False)

    def phone_list(self) -> list[str]:
        """The phones, splitting a comma-joined string once on first use."""
        if self._list is None:
            self._list = self.phones.split(",") if isinstance(self.phones, str) else self.phones
        return self._list


class MessageLog:
    """The last ``max_messages`` (about) accepted messages, newest last."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self.records: deque[MessageRecord] = deque()
        self.held = 0

    def add(self, record: MessageRecord) -> None:
        """Append a record and evict the oldest ones beyond the cap (the newest always stays)."""
        self.records.append(record)
        self.held += record.count
        while len(self.records) > 1 and self.held - self.records[0].count >= self.max_messages:
            self.held -= self.records.popleft().count

    def for_phone(self, phone: str) -> list[dict[str, Any]]:
        """Every held message to ``phone``, oldest first."""
        out: list[dict[str, Any]] = []
        for rec in self.records:
            if isinstance(rec.phones, str) and phone not in rec.phones:
                continue  # cheap substring test before splitting
            for i, p in enumerate(rec.phone_list()):
                if p == phone:
                    out.append(
                        {
                            "gateway": rec.gateway,
                            "account": rec.account,
                            "phone": p,
                            "text": rec.texts if isinstance(rec.texts, str) else rec.texts[i],
                            "message_id": rec.message_id,
                            "client_id": rec.client_id,
                            "accepted_at": rec.accepted_s,
                        }
                    )
        return out
