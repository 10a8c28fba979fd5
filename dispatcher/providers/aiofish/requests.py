"""aiofish SMS requests: validation and the body of every SMS endpoint. Pure.

Each ``plan_*`` function checks the caller's input (every problem collected into one
:class:`~dispatcher.errors.ValidationError`) and builds the JSON body; the clock
is passed in. Nothing here does I/O: :mod:`dispatcher.providers.aiofish.client` sends
what these build and parses what comes back.

Send variants, picked by ``AiofishAccount.encryption``:

* ``plain`` → ``/rest/sms/sendSms``; ``password`` is the MD5 hex of the password.
* ``phone`` → ``/rest/sms/sendSmsByEncrypt``: as plain, but each phone is
  AES-encrypted on its own (hex) and the ciphertexts are comma-joined. The
  manual's sample shows a single phone; its ``resDetail`` echoes one ciphertext
  per phone, which only works if each phone is encrypted separately, so that is
  our reading (the sandbox accepts it and the whole-list reading).
* ``full`` → ``/rest/sms/sendSms/encryption``: ``{account, ts, bizContent, sign}``,
  ``bizContent`` being the AES hex of the JSON body and ``sign`` the SHA256 of
  ``account, appSecret, bizContent, ts``.

batchSendSms exists plain and fully encrypted only: ``phone`` accounts send their
batches plain (the phones then travel in clear; the password still as MD5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dispatcher.errors import ConfigurationError
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.crypto import aes_encrypt_hex, biz_sign, password_md5
from dispatcher.redact import build_repr, keys_repr, phones_repr, size_repr
from dispatcher.validation import MAX_SMS_ID_CHARS, Checker

PROVIDER = "aiofish"
#: The manual's caps: phones per sendSms call, pairs per batchSendSms call.
MAX_SEND_PHONES = 2000
MAX_BATCH_ITEMS = 200
CONTENT_TYPE = "application/json;charset=utf-8"
SEND_PATHS: Mapping[str, str] = {
    "plain": "/rest/sms/sendSms",
    "phone": "/rest/sms/sendSmsByEncrypt",
    "full": "/rest/sms/sendSms/encryption",
}
BATCH_PATHS: Mapping[str, str] = {
    "plain": "/rest/sms/batchSendSms",
    "phone": "/rest/sms/batchSendSms",  # no phone-encrypted batch exists
    "full": "/rest/sms/batchSendSms/encryption",
}
BALANCE_PATH = "/rest/sms/getBalance"
REPORT_PATH = "/rest/sms/getReport"
REPLY_PATH = "/rest/sms/getReply"


@dataclass(frozen=True, slots=True)
class SendPlan:
    """A validated send: the path, the JSON body, and what is needed to read the answer.

    ``phones`` are the distinct normalised numbers sent, in the caller's order;
    ``duplicates`` the repeats dropped; ``sms_id`` the client id sent (or ``None``);
    ``echo`` maps each phone ciphertext to its phone (sendSmsByEncrypt echoes
    ciphertexts in ``resDetail``).
    """

    path: str
    body: Mapping[str, Any]
    phones: tuple[str, ...]
    duplicates: tuple[str, ...]
    sms_id: str | None
    echo: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # the body holds phones, the text and the password hash; echo maps to phones
        return build_repr(self, path=repr(self.path), body=keys_repr(self.body), phones=phones_repr(self.phones),
                          duplicates=phones_repr(self.duplicates), sms_id=repr(self.sms_id),
                          echo=size_repr(list(self.echo)))


def json_text(doc: Any) -> str:
    """Compact JSON text, non-ASCII kept as is: what bizContent encrypts."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def sealed_body(account: AiofishAccount, inner: Mapping[str, Any], now_ms: int) -> dict[str, str]:
    """The fully encrypted body ``{account, ts, bizContent, sign}`` carrying ``inner``.

    ``now_ms`` (epoch milliseconds) becomes ``ts``. Raises ``ConfigurationError``
    when the account lacks the AES key or app secret.
    """
    key, secret = _full_keys(account)
    biz = aes_encrypt_hex(key, json_text(inner))
    ts = str(now_ms)
    return {"account": account.account, "ts": ts, "bizContent": biz,
            "sign": biz_sign(account=account.account, app_secret=secret, biz_content=biz, ts=ts)}


def _full_keys(account: AiofishAccount) -> tuple[str, str]:
    if not account.aes_key or not account.app_secret:
        raise ConfigurationError(f"aiofish:{account.name} full encryption needs aes_key and app_secret")
    return account.aes_key, account.app_secret


def _options(check: Checker, sms_id: object, sub_code: object, send_time: object) -> dict[str, str]:
    """The optional fields every send shares; absent ones stay out of the body."""
    out: dict[str, str] = {}
    if (sid := check.client_id(sms_id, field="sms_id", max_chars=MAX_SMS_ID_CHARS)) is not None:
        out["smsId"] = sid
    if (sub := check.digits(sub_code, field="sub_code")) is not None:
        out["subCode"] = sub
    if (when := check.send_time(send_time, field="send_time")) is not None:
        out["sendTime"] = when
    return out


def _content(check: Checker, value: object, field: str) -> str:
    """Domestic content: non-empty, ≤ 500 characters, carrying a 【signature】."""
    text = check.text(value, field=field)
    if text.strip():  # an empty text is already one problem; "no signature" would repeat it
        check.signature(text, field=field)
    return text


def plan_send(account: AiofishAccount, phones: object, content: object, *, sms_id: object = None,
              sub_code: object = None, send_time: object = None, now_ms: int) -> SendPlan:
    """Validate a same-content send to ≤ 2000 phones and build it for the account's variant.

    ``send_time`` is a ``datetime`` or ``yyyy-MM-dd HH:mm:ss`` (China time);
    ``now_ms`` is epoch milliseconds (the ``ts`` of the encrypted variant).
    Raises ``ValidationError`` naming every problem (``phones[3]``, ``content``, ``sms_id``…).
    """
    check = Checker()
    recipients = check.phones(phones, limit=MAX_SEND_PHONES)
    text = _content(check, content, "content")
    options = _options(check, sms_id, sub_code, send_time)
    check.done()
    mode = account.encryption
    if mode == "full":
        body: dict[str, Any] = sealed_body(account, {"mobile": ",".join(recipients.phones), "content": text,
                                                     **options}, now_ms)
        return SendPlan(SEND_PATHS[mode], body, recipients.phones, recipients.duplicates, options.get("smsId"))
    echo: dict[str, str] = {}
    mobiles = list(recipients.phones)
    if mode == "phone":
        key = account.aes_key or ""  # AiofishAccount guarantees a key in this mode
        mobiles = [aes_encrypt_hex(key, p) for p in recipients.phones]
        echo = dict(zip(mobiles, recipients.phones, strict=True))
    body = {"account": account.account, "password": password_md5(account.password),
            "mobile": ",".join(mobiles), "content": text, **options}
    return SendPlan(SEND_PATHS[mode], body, recipients.phones, recipients.duplicates, options.get("smsId"), echo)


def pairs(check: Checker, items: object, *, field: str, what: str) -> list[tuple[object, object]]:
    """The well-formed 2-item pairs of ``items``; a problem names each malformed one (``items[2]``).

    ``what`` names the pair's parts for the message, e.g. ``"(phone, content)"``.
    """
    if isinstance(items, str) or not isinstance(items, Sequence):
        check.add(field, f"must be a list of {what} pairs")
        return []
    out: list[tuple[object, object]] = []
    for i, item in enumerate(items):
        if isinstance(item, str) or not isinstance(item, Sequence) or len(item) != 2:
            check.add(f"{field}[{i}]", f"must be a {what} pair")
            continue
        out.append((item[0], item[1]))
    return out


def plan_batch(account: AiofishAccount, items: object, *, sms_id: object = None, sub_code: object = None,
               send_time: object = None, now_ms: int) -> SendPlan:
    """Validate a batch of ≤ 200 ``(phone, content)`` pairs and build batchSendSms.

    A phone given twice is sent once, with its first content; the repeats are
    reported in ``duplicates``. Problems name the item: ``items[2]`` (the pair or
    its phone), ``items[2].content``. Raises ``ValidationError``.
    """
    check = Checker()
    options = _options(check, sms_id, sub_code, send_time)
    given = pairs(check, items, field="items", what="(phone, content)")
    check.done()  # the phone and content checks need well-formed pairs
    recipients = check.phones([phone for phone, _ in given], field="items", limit=MAX_BATCH_ITEMS)
    # Every content is checked, repeats too: the caller sees all problems at once.
    texts = [_content(check, content, f"items[{i}].content") for i, (_, content) in enumerate(given)]
    check.done()
    mobiles = [{"mobile": phone, "content": texts[i]}
               for phone, i in zip(recipients.phones, recipients.source_index, strict=True)]
    inner = {"mobiles": mobiles, **options}
    mode = account.encryption
    if mode == "full":
        body: dict[str, Any] = sealed_body(account, inner, now_ms)
    else:
        body = {"account": account.account, "password": password_md5(account.password), **inner}
    return SendPlan(BATCH_PATHS[mode], body, recipients.phones, recipients.duplicates, options.get("smsId"))


def query_params(account: AiofishAccount) -> dict[str, str]:
    """The ``account``/``password`` (MD5 hex) query of the GET pulls."""
    return {"account": account.account, "password": password_md5(account.password)}
