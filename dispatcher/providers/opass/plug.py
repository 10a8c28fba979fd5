"""opass (经分助手) as a gateway plug: what the send path needs to know of it (see :mod:`.registry`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dispatcher.errors import ConfigurationError
from dispatcher.limits import Limit
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.providers.opass.codes import OPASS_CODES
from dispatcher.providers.opass.jobs import BATCH, NAME, SEND, check_template_send
from dispatcher.providers.registry import Gateway, JobKind, RoutedForm, settings_of


def _templates(fields: dict[str, Any], _gateway: Any, where: str) -> dict[str, Any]:
    """An entry's declared console templates by code; raises ConfigurationError naming the account and template."""
    from dispatcher.templates import TemplateSyntaxError, parse_template

    raw = fields.get("templates")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}.templates: expected an object of template code -> text, "
                                 f"got {type(raw).__name__}")
    out = {}
    for code, text in raw.items():
        try:
            out[code] = parse_template(code, text)
        except TemplateSyntaxError as exc:
            raise ConfigurationError(f"{where} template {code}: {exc}") from None
    return {"templates": out}


def _route(account: Any, template: Any, options: Mapping[str, Any]) -> RoutedForm:
    """A route's template as this account's console template: the declared one whose text is
    exactly the route template's (codes differ per account; the text is what both share).
    Raises ConfigurationError naming the account when it declares none, or takes options."""
    if options:
        raise ConfigurationError(f"{NAME}:{account.name} takes no route options, got {sorted(options)}")
    code = next((c for c, declared in account.templates.items() if declared.text == template.text), None)
    if code is None:
        raise ConfigurationError(f"{NAME}:{account.name} declares no template with the text of route template "
                                 f"{template.code!r} ({template.text!r}): add its console code to the "
                                 f"entry's \"templates\"")
    return RoutedForm("template", {"template_code": code}, same=lambda values: {"params": values},
                      each=lambda values: values)


def make_client(account: Any) -> Any:
    """An :class:`~dispatcher.providers.opass.OpassClient` for ``account`` (an ``AccountConfig``)."""
    from dispatcher.providers.opass.client import OpassClient

    return OpassClient(settings_of(account, OpassAccount, NAME))


def _send(client: Any, job: Mapping[str, str], phones: Sequence[str], _payloads: Sequence[Any] | None,
          cid: str) -> Any:
    params = json.loads(job.get("params") or "[]")
    return client.send(list(phones), job["template_code"], params or None, bid=cid,
                       extend_code=job.get("extend_code") or None)


def _send_batch(client: Any, job: Mapping[str, str], phones: Sequence[str], payloads: Sequence[Any] | None,
                cid: str) -> Any:
    return client.send_batch(list(zip(phones, payloads or [], strict=True)), job["template_code"], bid=cid,
                             extend_code=job.get("extend_code") or None)


def _parse_push(account: Any, body: bytes, _environ: dict[str, Any]) -> tuple[list[Any], bytes, str]:
    from dispatcher.providers.opass import push as opass_push

    items = opass_push.parse_push(body, expected_api_key=account.gateway.api_key)
    return list(items), opass_push.PUSH_ANSWER_BODY, opass_push.PUSH_ANSWER_CONTENT_TYPE


#: From the manual: send ≈300 TPS; query APIs 3/min per enterprise (FAQ); balance 1/15 s;
#: statistics 4/min; receipt pull recommended 1/min (a pull by one chunk's bid before
#: resending it, "reconcile", only takes from the query budget).
PLUG = Gateway(
    name=NAME,
    account_class=OpassAccount,
    client=make_client,
    kinds=(JobKind(SEND, 1000, _send), JobKind(BATCH, 1000, _send_batch)),
    limits={
        "send": (Limit("send", 300, 1.0),),
        "receipts": (Limit("receipts", 1, 60.0), Limit("query", 3, 60.0)),
        "balance": (Limit("balance", 1, 15.0), Limit("query", 3, 60.0)),
        "statistics": (Limit("statistics", 4, 60.0), Limit("query", 3, 60.0)),
        "reconcile": (Limit("query", 3, 60.0),),
    },
    parse_push=_parse_push,
    polls={"receipts": "pull_receipts"},
    query_by_client_id=True,
    preload=("dispatcher.providers.opass.client", "dispatcher.providers.opass.push"),
    identity=lambda gateway: gateway.api_key,
    placeholder=lambda name: OpassAccount(name=name, api_key="fake", access_key="fake"),
    raw_fields=("templates",),
    account_extras=_templates,
    sends={"template": check_template_send},
    codes=OPASS_CODES,
    route=_route,
)
