"""aiofish international SMS (isms) as a gateway channel plug (see :mod:`.registry`).

It uses the aiofish accounts (``accounts_of``): an account's ``app_key``/``app_secret``
sign its calls, its ``callback_secret`` guards its hook ``/hooks/aiofish-isms/{account}/{token}``.
The status push carries only the ``msgId`` the send answered (no id of ours): the
webhook finds the chunk through the ledger's message index (``P:mid:``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dispatcher.limits import Limit
from dispatcher.providers.aiofish.account import AiofishAccount
from dispatcher.providers.aiofish.codes import AIOFISH_CODES
from dispatcher.providers.aiofish.jobs import ISMS_SEND as KIND
from dispatcher.providers.aiofish.jobs import check_international_send
from dispatcher.providers.aiofish.vsms import ISMS, MAX_MOBILES
from dispatcher.providers.registry import Gateway, JobKind, settings_of

NAME = ISMS


def _without_app_key(gateway: AiofishAccount) -> str | None:
    """Why an aiofish entry cannot send international SMS: its calls are signed with appKey/appSecret."""
    if gateway.app_key and gateway.app_secret:
        return None
    return "its aiofish entry has no app_key/app_secret, which sign international SMS"


def make_client(account: Any) -> Any:
    """An :class:`~dispatcher.providers.aiofish.vsms.AiofishIsmsClient` for ``account`` (an ``AccountConfig``)."""
    from dispatcher.providers.aiofish.vsms import AiofishIsmsClient

    return AiofishIsmsClient(settings_of(account, AiofishAccount, NAME))


def _send(client: Any, job: Mapping[str, str], phones: Sequence[str], _payloads: Sequence[Any] | None,
          cid: str) -> Any:
    # Our chunk attempt's id goes as the call's uuid (the manual's 用户端消息ID); the caller's is the job's tag.
    return client.send(job["content"], list(phones), uuid=cid)


def _parse_push(_account: Any, body: bytes, _environ: dict[str, Any]) -> tuple[list[Any], bytes, str]:
    from dispatcher.providers.aiofish import push as aiofish_push

    return [aiofish_push.parse_isms_push(body)], aiofish_push.PUSH_OK_BODY.encode(), "text/plain"


#: The manual documents no isms rate (only a ``request_limit`` answer): 20 calls/s
#: (20,000 numbers/s in calls of 1000) is our assumption, there so a request_limit
#: answer has something to slow down (the aiofish entry's ``limits`` are its SMS's, not
#: this channel's). isms has no balance
#: or receipt query API: nothing to poll, and an ambiguous chunk waits for pushes.
PLUG = Gateway(
    name=NAME,
    account_class=AiofishAccount,
    client=make_client,
    kinds=(JobKind(KIND, MAX_MOBILES, _send),),
    limits={"send": (Limit("send", 20, 1.0),)},
    parse_push=_parse_push,
    preload=("dispatcher.providers.aiofish.vsms", "dispatcher.providers.aiofish.push"),
    identity=lambda gateway: gateway.account,
    placeholder=lambda name: AiofishAccount(name=name, account="fake", password="fake"),  # noqa: S106
    accounts_of="aiofish",
    cannot_serve=_without_app_key,
    sends={"international": check_international_send},
    codes=AIOFISH_CODES,
    has_balance=False,  # the isms API has no balance call: its sends are not guarded
)
