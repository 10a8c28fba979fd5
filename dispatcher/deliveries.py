"""One recipient's outcome as the app sees it, and the compact form the ledger keeps it in. Pure.

Every recipient of a job has a record in the ledger (see :mod:`dispatcher.ledger_scripts`):
its state byte, the chunk's vendor message id, the last vendor code with its text
(an index into the chunk's code table) and the time of its last change. This module
turns those pieces into :class:`Delivery` values and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dispatcher.phones import mask
from dispatcher.redact import build_repr

#: Every state a recipient can be in; the last six are terminal. ``suppressed``: on the account's
#: suppression list (it replied an unsubscribe keyword) when the job was stored, so never sent.
STATES = ("pending", "sending", "accepted", "delivered", "failed", "rejected", "unknown", "cancelled", "suppressed")
TERMINAL = frozenset({"delivered", "failed", "rejected", "unknown", "cancelled", "suppressed"})
#: The per-phone state byte of a chunk (``pending``/``sending`` phones have none: the chunk's state is theirs).
STATE_BYTES = {"A": "accepted", "X": "rejected", "D": "delivered", "F": "failed", "U": "unknown",
               "C": "cancelled", "S": "suppressed"}
#: Longest vendor code / detail text kept (a hostile push could send a megabyte "status").
MAX_CODE_CHARS = 32
MAX_DETAIL_CHARS = 96
MAX_MESSAGE_ID_CHARS = 64
#: Distinct (code, detail) pairs a chunk's code table holds; later ones are kept as :data:`OVERFLOW_CODE`.
MAX_CODES_PER_CHUNK = 254
OVERFLOW_CODE = "other"
#: Bytes per phone of a chunk's record string: one code index, four for the time offset.
RECORD_WIDTH = 5
#: Time offsets are stored as ``at_ms - t0_ms + TIME_BIAS_MS`` in four bytes (a receipt's
#: vendor time may be before our acceptance): ±24.8 days around the chunk's t0.
TIME_BIAS_MS = 2**31


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient of one job: where it stands and why.

    ``state`` is one of :data:`STATES`. ``code`` / ``detail`` are the vendor's
    last word on it (a receipt's status such as ``DELIVRD`` / ``UNDELIV``, a
    submit refusal's code and text), empty while there is none. ``message_id`` is
    the vendor's id of the submission that carried it (opass ``msgId``, aiofish
    ``smsId``), empty before the gateway accepted it. ``at_ms`` is when its state
    last changed, in epoch ms (a receipt's own time when the vendor gave one).
    ``tag`` is the caller's ``bid`` / ``sms_id`` given to ``send_template`` /
    ``send_content`` (``""`` if none). The repr masks the phone.
    """

    job_id: str
    provider: str
    account: str
    phone: str
    state: str
    code: str = ""
    detail: str = ""
    message_id: str = ""
    at_ms: int = 0
    tag: str = ""

    def __repr__(self) -> str:
        return build_repr(self, job_id=repr(self.job_id), provider=repr(self.provider), account=repr(self.account),
                          phone=repr(mask(self.phone)), state=repr(self.state), code=repr(self.code),
                          detail=repr(self.detail), message_id=repr(self.message_id), at_ms=str(self.at_ms),
                          tag=repr(self.tag))

    @property
    def final(self) -> bool:
        """Whether the state can no longer change."""
        return self.state in TERMINAL

    def to_dict(self, *, masked: bool = False) -> dict[str, Any]:
        """The fields as a JSON-ready dict; ``masked`` shows the phone as ``138****1234``."""
        out = asdict(self)
        if masked:
            out["phone"] = mask(self.phone)
        return out


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """A vendor code and its text, cleaned for storage: no tab or newline (the table's separators), clipped."""

    code: str = ""
    detail: str = field(default="")

    @classmethod
    def clean(cls, code: object, detail: object = "") -> CodeEntry:
        """Build from untrusted values (anything from a push or an answer). Pure."""
        return cls(_clean(code, MAX_CODE_CHARS), _clean(detail, MAX_DETAIL_CHARS))

    @classmethod
    def of_receipt(cls, code: str | None, status: str | None) -> CodeEntry:
        """A receipt's entry: its code (aiofish's ``stat``) with the status text beside it, or
        the status alone when it is the code (opass's ``DELIVRD`` / ``UNDELIV``). Pure."""
        if code and status and status != code:
            return cls.clean(code, status)
        return cls.clean(code or status or "")

    def packed(self) -> str:
        """``code<TAB>detail``: one entry of a chunk's code table."""
        return f"{self.code}\t{self.detail}"

    @classmethod
    def unpack(cls, text: str) -> CodeEntry:
        """Inverse of :meth:`packed`."""
        code, _, detail = text.partition("\t")
        return cls(code, detail)


def clean_id(value: object) -> str:
    """A vendor message id from an untrusted source, cleaned and clipped to ``MAX_MESSAGE_ID_CHARS``. Pure."""
    return "".join(_clean(value, MAX_MESSAGE_ID_CHARS * 2).split())[:MAX_MESSAGE_ID_CHARS]


def _clean(value: object, most: int) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = "".join(" " if c in "\t\n\r" else c for c in text[: most * 2] if c.isprintable() or c in "\t\n\r")
    return text.strip()[:most]


def read_record(record: bytes, index: int, t0_ms: int) -> tuple[int, int]:
    """``(code index, at_ms)`` of phone ``index`` from a chunk's record string; ``(0, t0_ms)`` if it has none."""
    start = index * RECORD_WIDTH
    piece = record[start : start + RECORD_WIDTH]
    if len(piece) < RECORD_WIDTH:
        return 0, t0_ms
    offset = int.from_bytes(piece[1:], "big")
    return piece[0], (t0_ms + offset - TIME_BIAS_MS) if offset else t0_ms


def code_table(text: str) -> list[CodeEntry]:
    """A chunk's code table (``\\n``-joined packed entries), in index order from 1."""
    return [CodeEntry.unpack(line) for line in text.split("\n")] if text else []
