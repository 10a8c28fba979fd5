"""opass's sends as jobs: ``Dispatcher.send_template`` checked and cut to the calls that send it. Pure.

Two kinds: ``opass.send`` (one template, the same values for everyone:
``/message/send``) and ``opass.batch`` (values per phone: ``/message/sendBatch``),
each chunk at most the account's ``batch_max`` phones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from dispatcher import jobs
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.templates import Template
from dispatcher.validation import MAX_BID_CHARS, MAX_PARAM_CHARS, Checker

NAME = "opass"
SEND, BATCH = f"{NAME}.send", f"{NAME}.batch"


def check_template_send(account: Any, *, template_code: str, **arguments: Any) -> tuple[jobs.JobSpec, int]:
    """``send_template``'s checks for ``account`` (an ``AccountConfig``): ``(job, chunk size)``;
    ``arguments`` are :func:`template_job`'s.

    When the account declares ``template_code`` in the accounts file, the values are
    checked against that template (count, each ``maxLen``). Raises ``ValidationError``.
    """
    # A template the accounts file declares is checked here; any other code is sent unchecked.
    declared = account.templates.get(template_code.strip()) if isinstance(template_code, str) else None
    spec = template_job(account.name, template_code=template_code, template=declared, **arguments)
    settings = account.gateway
    return spec, settings.batch_max if isinstance(settings, OpassAccount) else 1000


def template_job(
    account: str,
    *,
    template_code: str,
    phones: Iterable[Any] | None = None,
    params: Sequence[Any] | None = None,
    recipients: Iterable[tuple[Any, Sequence[Any]]] | None = None,
    bid: str | None = None,
    extend_code: str | None = None,
    priority: str = "bulk",
    send_at_ms: int | None = None,
    skip_invalid: bool = False,
    template: Template | None = None,
) -> jobs.JobSpec:
    """Validate an opass template job; raises ``ValidationError`` listing every problem.

    Each template value may be at most ``MAX_PARAM_CHARS`` (500) characters. With
    ``template`` (declared in the accounts file) every phone's values must also
    match it: one per variable, each within the variable's ``maxLen``.
    """
    check = Checker()
    if not isinstance(template_code, str) or not template_code.strip():
        check.add("template_code", "must be the approved template's code")
    same = check.params(params or [], field="params", max_chars=MAX_PARAM_CHARS) if params is not None else []
    if template is not None and recipients is None:
        _match_template(check, template, params or [], same, "params")
    if params is not None and recipients is not None:
        check.add("params", "give params (same for all) or recipients (per phone), not both")
    extend = check.digits(extend_code, field="extend_code")
    check.client_id(bid, field="bid", max_chars=MAX_BID_CHARS)
    meta = jobs.common_meta(check, priority, send_at_ms)

    widths: dict[int, int] = {}

    def per_phone(values: Any, where: str) -> list[str]:
        got = check.params(values, field=f"{where}.params", max_chars=MAX_PARAM_CHARS)
        widths.setdefault(len(got), int(where.split("[")[1].rstrip("]")))
        if template is not None:
            _match_template(check, template, values, got, f"{where}.params")
        return got

    rows, payloads, dups, skipped = jobs.recipients(
        check, phones, recipients, per_phone if recipients is not None else None, skip_invalid)
    if template is None:  # with a template each recipient's count was checked against it, by name
        check.same_length_seen(widths, field="recipients")
    check.done()
    kind = BATCH if recipients is not None else SEND
    meta.update(kind=kind, provider=NAME, account=account, template_code=template_code.strip(),
                params=json.dumps(same, ensure_ascii=False), extend_code=extend or "", tag=bid or "")
    return jobs.JobSpec(kind, NAME, account, meta, rows, payloads, dups, tuple(skipped))


def _match_template(check: Checker, template: Template, given: Any, values: list[str], field: str) -> None:
    """Check one phone's values against a declared template, naming ``field`` and the variable.

    ``given`` is what the caller passed, ``values`` what :meth:`Checker.params` kept of it.
    """
    if isinstance(given, str) or not isinstance(given, Sequence):
        return  # not a list: already refused as such
    wrong_count = template.count_problem(len(given))
    if wrong_count:
        check.add(field, wrong_count)
    elif len(values) == len(given):  # else a value of the wrong type is refused and the rest no longer line up
        for index, message in template.problems(values):
            if index is not None and len(values[index]) <= MAX_PARAM_CHARS:  # longer: refused by Checker.params
                check.add(f"{field}[{index}]", message)
