"""aiofish (飞鱼短信) SMS as a gateway plug: what the send path needs to know of it (see :mod:`.registry`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dispatcher.errors import ConfigurationError
from dispatcher.limits import Limit
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.codes import AIOFISH_CODES
from dispatcher.providers.aiofish.jobs import BATCH, BATCH_MAX, NAME, SEND, SEND_MAX, check_content_send
from dispatcher.providers.base import system_clock_ms
from dispatcher.providers.registry import Gateway, JobKind, RoutedForm, settings_of

#: The forms an aiofish console can push in (its 推送方式): plain form, form with an
#: AES-encrypted phoneNumber, fully encrypted and signed JSON.
PUSH_VARIANTS = ("plain", "phone", "full")


def _push_variant(fields: dict[str, Any], gateway: Any, where: str) -> dict[str, Any]:
    """The push form the account's hook takes; unset, the console pushes the way the account
    sends (its encryption). Raises ConfigurationError naming ``where``."""
    variant = str(fields.get("push_variant") or getattr(gateway, "encryption", "plain"))
    if variant not in PUSH_VARIANTS:
        raise ConfigurationError(f"{where}.push_variant: {variant!r} is not one of {', '.join(PUSH_VARIANTS)}")
    if variant != "plain" and not getattr(gateway, "aes_key", None):
        raise ConfigurationError(f"{where}.push_variant: {variant} pushes need aes_key")
    if variant == "full" and not getattr(gateway, "app_secret", None):
        raise ConfigurationError(f"{where}.push_variant: full pushes need app_secret")
    return {"push_variant": variant}


def _route(account: Any, template: Any, options: Mapping[str, Any]) -> RoutedForm:
    """A route's template as free content: the rendered text behind the route entry's
    ``【signature】`` (signatures are registered per vendor account, so the entry names it).
    Raises ConfigurationError when the entry has no signature or other options."""
    signature = options.get("signature")
    unknown = sorted(set(options) - {"signature"})
    if unknown:
        raise ConfigurationError(f"{NAME}:{account.name} takes only a route signature, got {unknown}")
    if not isinstance(signature, str) or not 1 <= len(signature) <= 20 or "【" in signature or "】" in signature:
        raise ConfigurationError(f"{NAME}:{account.name} in a route needs \"signature\": the 1-20 characters "
                                 f"its texts carry in 【】, got {signature!r}")
    head = f"【{signature}】"
    return RoutedForm("content", {}, same=lambda values: {"content": head + template.render(values)},
                      each=lambda values: head + template.render(values))


def make_client(account: Any) -> Any:
    """An :class:`~dispatcher.providers.aiofish.AiofishClient` for ``account`` (an ``AccountConfig``)."""
    from dispatcher.providers.aiofish.client import AiofishClient

    return AiofishClient(settings_of(account, AiofishAccount, NAME))


def _send(client: Any, job: Mapping[str, str], phones: Sequence[str], _payloads: Sequence[Any] | None,
          cid: str) -> Any:
    return client.send(list(phones), job["content"], sms_id=cid, sub_code=job.get("sub_code") or None)


def _send_batch(client: Any, job: Mapping[str, str], phones: Sequence[str], payloads: Sequence[Any] | None,
                cid: str) -> Any:
    return client.send_batch(list(zip(phones, payloads or [], strict=True)), sms_id=cid,
                             sub_code=job.get("sub_code") or None)


def _parse_push(account: Any, body: bytes, environ: dict[str, Any]) -> tuple[list[Any], bytes, str]:
    from dispatcher.providers.aiofish import push as aiofish_push

    item = aiofish_push.parse_sms_push(body, environ.get("CONTENT_TYPE", ""), account.gateway,
                                       now_ms=system_clock_ms(), variant=account.push_variant)
    return [item], aiofish_push.PUSH_OK_BODY.encode(), "text/plain"


#: The manual advises a balance query every 5 s and documents no send limit: 200 requests/s
#: is our assumption (40,000 recipients/s in batches of 200), there so its p:010 answer has
#: something to slow down; override it per account. Its getReport takes no filter by our
#: id, so an ambiguous chunk waits for pushes and polls.
PLUG = Gateway(
    name=NAME,
    account_class=AiofishAccount,
    client=make_client,
    kinds=(JobKind(SEND, SEND_MAX, _send), JobKind(BATCH, BATCH_MAX, _send_batch)),
    limits={
        "send": (Limit("send", 200, 1.0),),
        "balance": (Limit("balance", 1, 5.0),),
        "receipts": (Limit("receipts", 1, 60.0),),
        "replies": (Limit("replies", 1, 60.0),),
    },
    parse_push=_parse_push,
    polls={"receipts": "pull_receipts", "replies": "pull_replies"},
    preload=("dispatcher.providers.aiofish.client", "dispatcher.providers.aiofish.push"),
    identity=lambda gateway: gateway.account,
    placeholder=lambda name: AiofishAccount(name=name, account="fake", password="fake"),  # noqa: S106
    raw_fields=("push_variant",),
    account_extras=_push_variant,
    sends={"content": check_content_send},
    codes=AIOFISH_CODES,
    route=_route,
)
