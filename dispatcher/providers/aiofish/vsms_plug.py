"""aiofish video SMS (视频短信, vsms) as a gateway plug (see :mod:`.registry`).

It sends through the aiofish accounts (``accounts_of``): each aiofish entry with an
appKey/appSecret is also an ``aiofish-vsms`` account of the same name, and its hook
is ``/hooks/aiofish-vsms/{account}/{callback_secret}`` (the console's 状态报告 and
模板状态 push addresses).

Two job kinds: ``aiofish-vsms.message`` (``/rest/vsms/v1/message``, one template to
every phone) and ``aiofish-vsms.vars`` (``/rest/vsms/v1/message/vars``, values for
``#p_1#``..``#p_5#`` per phone), each chunk at most :data:`MAX_MOBILES` phones. The
chunk's client id goes out as the ``uuid``; the vendor's status pushes carry only
the ``msgId`` its answer gave, so they are matched to the chunk attempt through the
message-id index (:func:`dispatcher.receipts.resolve_by_message_id`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dispatcher.limits import Limit
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.codes import AIOFISH_CODES
from dispatcher.providers.aiofish.jobs import VSMS_MESSAGE as MESSAGE
from dispatcher.providers.aiofish.jobs import VSMS_VARS as VARS
from dispatcher.providers.aiofish.jobs import check_video_send
from dispatcher.providers.aiofish.vsms import MAX_MOBILES, VSMS
from dispatcher.providers.registry import Gateway, JobKind, settings_of

NAME = VSMS
#: What a status or audit push is answered when it was kept: the manual's string ``0``.
PUSH_OK_BODY = b"0"


def _without_app_key(gateway: AiofishAccount) -> str | None:
    """Why an aiofish entry cannot send video SMS: its calls are signed with appKey/appSecret."""
    if gateway.app_key and gateway.app_secret:
        return None
    return "its aiofish entry has no app_key/app_secret, which sign video SMS"


def make_client(account: Any) -> Any:
    """An :class:`~dispatcher.providers.aiofish.vsms.AiofishVsmsClient` for ``account`` (an ``AccountConfig``)."""
    from dispatcher.providers.aiofish.vsms import AiofishVsmsClient

    return AiofishVsmsClient(settings_of(account, AiofishAccount, NAME))


def _send(client: Any, job: Mapping[str, str], phones: Sequence[str], _payloads: Sequence[Any] | None,
          cid: str) -> Any:
    return client.send(job["template_id"], list(phones), uuid=cid)


def _send_vars(client: Any, job: Mapping[str, str], phones: Sequence[str], payloads: Sequence[Any] | None,
               cid: str) -> Any:
    return client.send_vars(job["template_id"], list(zip(phones, payloads or [], strict=True)), uuid=cid)


def _parse_push(_account: Any, body: bytes, _environ: dict[str, Any]) -> tuple[list[Any], bytes, str]:
    from dispatcher.providers.aiofish import push as aiofish_push

    return [aiofish_push.parse_vsms_push(body)], PUSH_OK_BODY, "text/plain"


def _keep_audits(rt: Any, account: Any, items: list[Any]) -> None:
    """Keep each template audit push (``TemplateAudit``) as the template's known state."""
    from dispatcher.providers.aiofish.push import TemplateAudit
    from dispatcher.providers.base import system_clock_ms
    from dispatcher.template_audits import Audit, store_audit

    for item in items:
        if isinstance(item, TemplateAudit):
            store_audit(rt.redis, rt.keys, NAME, account.name,
                        Audit(item.tpl_id, item.state, item.reason, system_clock_ms()))


#: The manual names a ``request_limit`` answer but no figure: 200 requests/s is our
#: assumption (as for aiofish SMS), there so that answer has something to slow down.
PLUG = Gateway(
    name=NAME,
    account_class=AiofishAccount,
    client=make_client,
    kinds=(JobKind(MESSAGE, MAX_MOBILES, _send), JobKind(VARS, MAX_MOBILES, _send_vars)),
    limits={"send": (Limit("send", 200, 1.0),)},
    parse_push=_parse_push,
    preload=("dispatcher.providers.aiofish.vsms", "dispatcher.providers.aiofish.push"),
    identity=lambda gateway: gateway.app_key or gateway.account,
    accounts_of="aiofish",
    cannot_serve=_without_app_key,
    keep_items=_keep_audits,
    sends={"video": check_video_send},
    codes=AIOFISH_CODES,
    has_balance=False,  # aiofish documents no vsms balance query: its sends are not guarded
    placeholder=lambda name: AiofishAccount(name=name, account="fake", password="fake"),  # noqa: S106
)
