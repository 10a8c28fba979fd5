"""The ``sms-dispatch`` command line (click comes with Celery)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from dispatcher.segments import domestic_segments, international_segments


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Send SMS through opass and aiofish with Celery workers; run a local sandbox of both."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8800, show_default=True, type=int, help="Port; 0 picks a free one.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="JSON file with accounts, templates, limits, receipts (see config/sandbox.example.json).")
@click.option("--time-scale", type=float, default=None,
              help="Multiply the vendors' push retry delays (e.g. 0.001 turns 5 min into 0.3 s).")
def sandbox(host: str, port: int, config_path: str | None, time_scale: float | None) -> None:
    """Serve both gateways (opass + aiofish) at their real paths on one port.

    Demo credentials and the /_sandbox/ control API are in the README.
    """
    try:
        from dispatcher.local.sandbox.__main__ import main as sandbox_main
    except ModuleNotFoundError as exc:
        if exc.name != "aiohttp":
            raise
        raise click.ClickException("the sandbox needs aiohttp: pip install 'sms-dispatch[sandbox]'") from None

    argv = ["--host", host, "--port", str(port)]
    if config_path:
        argv += ["--config", config_path]
    if time_scale is not None:
        argv += ["--time-scale", str(time_scale)]
    sys.exit(sandbox_main(argv))


@main.command()
@click.argument("text")
@click.option("--international", is_flag=True, help="Use the international rules (GSM-7 160/153).")
def segments(text: str, international: bool) -> None:
    """Show how many billed parts TEXT takes, and their sizes."""
    seg = international_segments(text) if international else domestic_segments(text)
    click.echo(json.dumps({"encoding": seg.encoding, "units": seg.units, "parts": list(seg.parts),
                           "count": seg.count}))


# --------------------------------------------------------------------------- pipeline


def _dispatcher() -> Any:
    from dispatcher.errors import ConfigurationError
    from dispatcher.logs import configure
    from dispatcher.producer import Dispatcher

    configure("WARNING")
    try:
        return Dispatcher()
    except ConfigurationError as exc:  # an unreadable accounts file or setting: a message, not a traceback
        raise click.ClickException(str(exc)) from None


#: What ``--reveal-phones`` says in every command that prints phones.
REVEAL_HELP = ("Print phone numbers in full. Without it tables and JSON show 138****1234: "
               "command output ends up in shell history and logs.")


def account_argument(provider: str, account: str | None) -> tuple[str, str]:
    """``PROVIDER ACCOUNT`` or ``PROVIDER:ACCOUNT`` as ``(provider, account)``; ``click.UsageError`` otherwise."""
    if account is None:
        provider, sep, account = provider.partition(":")
        if not (sep and provider and account):
            raise click.UsageError("give the account as PROVIDER ACCOUNT or PROVIDER:ACCOUNT (e.g. opass:demo)")
    elif ":" in provider:
        raise click.UsageError("give the account as PROVIDER ACCOUNT or PROVIDER:ACCOUNT, not both")
    return provider, account


def _read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    """Phones and the extra columns of a CSV (header optional: a first cell with no digit is a header)."""
    import csv

    phones: list[str] = []
    extras: list[list[str]] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if not row or (i == 0 and not any(ch.isdigit() for ch in row[0])):
                continue
            phones.append(row[0])
            extras.append(row[1:])
    return phones, extras


#: The sends ``sms-dispatch send`` has options for: a template with its values, or a text.
CLI_FORMS = ("template", "content")


def _cli_gateways() -> list[str]:
    """The gateways ``sms-dispatch send`` can send through: those serving one of :data:`CLI_FORMS`."""
    from dispatcher.providers import registry

    return [p.name for p in registry.gateways() if any(form in p.sends for form in CLI_FORMS)]


def _form_of(provider: str) -> str:
    """Which of :data:`CLI_FORMS` ``provider`` sends."""
    from dispatcher.providers import registry

    return next(form for form in CLI_FORMS if form in registry.gateway(provider).sends)


def _refuse_unused_options(provider: str, form: str, per_phone: bool, template_code: str | None,
                           params: tuple[str, ...], content: str | None) -> None:
    """Raise ``click.UsageError`` for an option that would be silently ignored, before anything is stored."""
    if form == "template" and content is not None:
        raise click.UsageError(f"--content is not for {provider}: it sends --template with --param values")
    if form == "content" and (template_code or params):
        raise click.UsageError(f"--template/--param are not for {provider}: it sends --content")
    if per_phone and (params or content is not None):
        option = "--param" if params else "--content"
        raise click.UsageError(f"{option} cannot be combined with a CSV that has per-phone columns: the columns "
                               f"give each phone its values. Drop {option} or the CSV's extra columns.")


@main.command()
@click.argument("provider", type=click.Choice(_cli_gateways()))
@click.argument("account")
@click.option("--phones", help="Comma-separated phone numbers.")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False),
              help="CSV: phone[,param…] for a template gateway (opass), phone[,content] for a text one (aiofish).")
@click.option("--template", "template_code", help="Template code (a gateway that sends templates: opass).")
@click.option("--param", "params", multiple=True, help="Template value (repeat, in order).")
@click.option("--content", help="Message text, with its 【signature】 (a gateway that sends text: aiofish).")
@click.option("--priority", type=click.Choice(["otp", "bulk"]), default="bulk", show_default=True)
@click.option("--skip-invalid", is_flag=True, help="Leave bad numbers out (listed) instead of refusing the job.")
@click.option("--yes", is_flag=True, help="Send without asking (needed when stdin is not a terminal).")
@click.option("--force", is_flag=True, help="Send even if the account's known balance does not cover the job.")
def send(provider: str, account: str, phones: str | None, csv_path: str | None, template_code: str | None,
         params: tuple[str, ...], content: str | None, priority: str, skip_invalid: bool, yes: bool,
         force: bool) -> None:
    """Print the job's estimate (recipients, segments, balance), ask, then queue it and print its id.

    Track it with `sms-dispatch status JOB`.
    """
    from dispatcher.errors import DispatchError

    if bool(phones) == bool(csv_path):
        raise click.UsageError("give exactly one of --phones or --csv")
    numbers, extras = (phones.split(","), []) if phones else _read_csv(csv_path)  # type: ignore[arg-type]
    per_phone = any(extras)
    form = _form_of(provider)
    _refuse_unused_options(provider, form, per_phone, template_code, params, content)
    if form == "template" and not template_code:
        raise click.UsageError(f"{provider} needs --template")
    arguments = _send_arguments(form, numbers, extras, template_code, params, content)
    arguments.update(priority=priority, skip_invalid=skip_invalid)
    d = _dispatcher()
    try:
        _confirm(d.estimate(form, account, **arguments), yes=yes, force=force)
    except DispatchError as exc:
        raise click.ClickException(str(exc)) from None
    with click.progressbar(length=len(numbers), label="storing recipients", file=sys.stderr) as bar:
        done = [0]

        def progress(stored: int) -> None:
            bar.update(stored - done[0])
            done[0] = stored

        try:
            handle = getattr(d, f"send_{form}")(account, progress=progress, force=force, **arguments)
        except DispatchError as exc:
            raise click.ClickException(str(exc)) from None
    for problem in handle.invalid:
        click.echo(f"skipped {problem}", err=True)
    click.echo(json.dumps({"job_id": handle.job_id, "recipients": handle.total, "chunks": handle.chunks,
                           "duplicates_dropped": handle.duplicates, "invalid_skipped": len(handle.invalid),
                           "suppressed": handle.suppressed}))


def _send_arguments(form: str, numbers: list[str], extras: list[list[str]], template_code: str | None,
                    params: tuple[str, ...], content: str | None) -> dict[str, Any]:
    """``Dispatcher.send_<form>``'s job-shaping arguments for the options given."""
    per_phone = any(extras)
    if form == "template":
        return {"template_code": template_code, **(
            {"recipients": list(zip(numbers, extras, strict=True))} if per_phone
            else {"phones": numbers, "params": list(params) or None})}
    return ({"recipients": [(p, e[0] if e else "") for p, e in zip(numbers, extras, strict=True)]}
            if per_phone else {"phones": numbers, "content": content})


def _confirm(estimate: Any, *, yes: bool, force: bool) -> None:
    """Print the estimate on stderr, refuse a job the balance does not cover (unless ``force``), ask unless ``yes``."""
    for line in estimate.lines():
        click.echo(line, err=True)
    if estimate.covered is False and not force:
        raise click.ClickException(f"the balance does not cover the job ({estimate.segments} messages, balance "
                                   f"{estimate.balance}): top the account up, or pass --force to send anyway")
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.ClickException("stdin is not a terminal, so there is no one to confirm: pass --yes to send")
    if not click.confirm("send it?", err=True):
        raise click.ClickException("not sent")


def _funnel_line(status: Any) -> str:
    c = status.counts
    done = status.total - c["pending"] - c["sending"]
    width = 30
    filled = int(width * done / status.total) if status.total else width
    bar = "#" * filled + "-" * (width - filled)
    return (f"[{bar}] {done}/{status.total} submitted | accepted {c['accepted']} delivered {c['delivered']} "
            f"failed {c['failed']} rejected {c['rejected']} unknown {c['unknown']}"
            + (f" cancelled {c['cancelled']}" if "cancelled" in c else "")
            + (f" suppressed {c['suppressed']}" if c.get("suppressed") else "")
            + (f" | PAUSED: {status.paused}" if status.paused else ""))


def _job_status(d: Any, job_id: str, *, phones: bool) -> Any:
    try:
        return d.status(job_id, phones=phones)
    except KeyError:
        raise click.ClickException(f"no job {job_id} (unknown or expired)") from None


def _status_json(st: Any, reveal: bool) -> str:
    from dispatcher.delivery_view import as_json, status_deliveries

    doc: dict[str, Any] = {"job_id": st.job_id, "kind": st.kind, "account": f"{st.provider}:{st.account}",
                           "total": st.total, "counts": st.counts, "paused": st.paused}
    if getattr(st, "tag", None) is not None:
        doc["tag"] = st.tag
    if st.phones is not None:
        doc["phones"] = as_json(status_deliveries(st.job_id, st.provider, st.account, st.phones), reveal=reveal)
    return json.dumps(doc, ensure_ascii=False)


@main.command()
@click.argument("job_id")
@click.option("--watch", is_flag=True, help="Refresh until every recipient has a final state.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--phones", is_flag=True,
              help="Also each phone: state, vendor code, message id, time (local, ms) and vendor text.")
@click.option("--reveal-phones", is_flag=True, help=REVEAL_HELP)
def status(job_id: str, watch: bool, as_json: bool, phones: bool, reveal_phones: bool) -> None:
    """Show a job's funnel: pending, sending, accepted, delivered, failed, rejected, unknown.

    With --phones a table of every recipient follows (after the last refresh with --watch);
    with --json they are the "phones" list, one object per recipient with the fields of
    dispatcher.deliveries.Delivery. Phones are masked in both unless --reveal-phones.
    """
    import time

    from dispatcher.delivery_view import job_rows, status_deliveries

    d = _dispatcher()
    while True:
        # A table of phones is printed once, so a watch does not read every phone each second.
        st = _job_status(d, job_id, phones=phones and (as_json or not watch))
        if as_json:
            click.echo(_status_json(st, reveal_phones))
        else:
            click.echo(("\r" if watch else "") + _funnel_line(st), nl=not watch)  # a watch redraws its line
        if not watch or st.finished:
            break
        time.sleep(1.0)
    if watch and not as_json:
        click.echo()
    if phones and not as_json:
        if st.phones is None:
            st = _job_status(d, job_id, phones=True)
        rows = status_deliveries(st.job_id, st.provider, st.account, st.phones)
        for line in job_rows(rows, reveal=reveal_phones):
            click.echo(line)


@main.command()
@click.option("--msg-id", "message_id", help="The vendor's message id (opass msgId, aiofish smsId).")
@click.option("--phone", help="A mainland mobile number (13812345678 or +8613812345678).")
@click.option("--provider", help="Only this gateway's records (a configured provider: opass, aiofish).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1), help="Most records shown.")
@click.option("--json", "as_json", is_flag=True, help='Machine-readable: {"deliveries": [...]}, newest first.')
@click.option("--reveal-phones", is_flag=True, help=REVEAL_HELP)
def lookup(message_id: str | None, phone: str | None, provider: str | None, limit: int, as_json: bool,
           reveal_phones: bool) -> None:
    """Find every recipient record still kept by vendor message id (--msg-id) or by phone (--phone), newest first.

    Each shows its time (local, ms), job, account, phone, state, the vendor's
    last code, message id, the caller's tag (bid / sms_id) and the vendor's text.
    Phones are masked, in the table and in JSON, unless --reveal-phones.
    """
    from dispatcher.delivery_view import as_json as deliveries_json
    from dispatcher.delivery_view import lookup_rows
    from dispatcher.errors import DispatchError

    if (message_id is None) == (phone is None):
        raise click.UsageError("give exactly one of --msg-id or --phone")
    d = _dispatcher()
    configured = sorted({acct.provider for acct in d.accounts})
    if provider is not None and provider not in configured:
        raise click.UsageError(f"no configured account of provider {provider!r} (configured: "
                               f"{', '.join(configured) or 'none'})")
    try:
        found = d.lookup(message_id=message_id, phone=phone, provider=provider, limit=limit)
    except DispatchError as exc:  # a phone that is not a mainland mobile number
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({"deliveries": deliveries_json(found, reveal=reveal_phones)}, ensure_ascii=False))
    elif not found:
        click.echo("no record found (records are kept while their job is: SMSD_JOB_TTL_S)")
    else:
        for line in lookup_rows(found, reveal=reveal_phones):
            click.echo(line)


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help='Machine-readable: {"job_id": ..., "cancelled": N}.')
def cancel(job_id: str, as_json: bool) -> None:
    """Cancel every recipient of JOB not yet submitted to the gateway; print how many.

    Chunks already in flight finish and are recorded as they end; a scheduled job
    never goes out. Cancelling again cancels 0. Exits 1 for an unknown (or expired) job.
    """
    d = _dispatcher()
    try:
        count = d.cancel(job_id)
    except KeyError:
        raise click.ClickException(f"no job {job_id} (unknown or expired)") from None
    if as_json:
        click.echo(json.dumps({"job_id": job_id, "cancelled": count}))
    else:
        click.echo(f"cancelled {count} recipients of job {job_id}"
                   + ("" if count else " (none was left unsubmitted)"))


@main.command()
@click.argument("provider")
@click.argument("account", required=False)
@click.option("--reason", default="paused by an operator", show_default=True,
              help="Why, shown by `sms-dispatch status` as PAUSED: operator: REASON.")
def pause(provider: str, account: str | None, reason: str) -> None:
    """Stop sending for an account (PROVIDER ACCOUNT or PROVIDER:ACCOUNT) until `sms-dispatch resume`.

    Its chunks stay pending; chunks already in a worker's hands finish. Beat's
    balance check, which lifts a pause after an account-fatal error once the
    balance is back, never lifts an operator's pause.
    """
    from dispatcher.errors import DispatchError

    provider, account = account_argument(provider, account)
    d = _dispatcher()
    try:
        d.pause(provider, account, reason)
    except DispatchError as exc:  # not a configured account
        raise click.ClickException(str(exc)) from None
    click.echo(f"paused {provider}:{account} ({reason}); `sms-dispatch resume {provider}:{account}` sends again")


@main.command()
@click.argument("provider")
@click.argument("account", required=False)
def resume(provider: str, account: str | None) -> None:
    """Un-pause an account (PROVIDER ACCOUNT or PROVIDER:ACCOUNT); its pending chunks are sent.

    Lifts an operator's pause and one after an account-fatal error alike (fix what paused it first).
    """
    from dispatcher.errors import DispatchError

    provider, account = account_argument(provider, account)
    d = _dispatcher()
    try:
        count = d.resume(provider, account)
    except DispatchError as exc:  # not a configured account
        raise click.ClickException(str(exc)) from None
    click.echo(f"resumed {provider}:{account}: {count} pending chunks queued")


@main.group()
def suppress() -> None:
    """Suppression lists: phones that replied an unsubscribe keyword (TD, 退订 …) or that you add.

    Bulk jobs skip a listed phone when they are stored (it is recorded `suppressed`, never
    sent); OTPs too if the account's "unsubscribe": {"otp": true}. ACCOUNT is PROVIDER:ACCOUNT;
    a channel of another gateway's accounts (aiofish-vsms:a) shares that entry's list (aiofish:a).
    """


def _list_name(provider: str, account: str) -> str:
    from dispatcher.suppression import list_owner

    return ":".join(list_owner(provider, account))


def _change_list(account: str, phones: tuple[str, ...], adding: bool) -> None:
    """`suppress add` / `suppress remove`: change the list, say how many changed."""
    from dispatcher.errors import DispatchError

    provider, name = account_argument(account, None)
    d = _dispatcher()
    try:
        changed = (d.suppress if adding else d.unsuppress)(provider, name, list(phones))
    except DispatchError as exc:  # not a configured account, or not a number (masked)
        raise click.ClickException(str(exc)) from None
    what = "added to" if adding else "removed from"
    unchanged = "already on it" if adding else "not on it"
    from dispatcher.suppression import list_phone

    distinct = len({list_phone(p) for p in phones})
    click.echo(f"{changed} {what} the suppression list of {_list_name(provider, name)} "
               f"({distinct - changed} {unchanged}); it holds {d.suppression_count(provider, name)}")


@suppress.command("add")
@click.argument("account")
@click.argument("phones", nargs=-1, required=True)
def suppress_add(account: str, phones: tuple[str, ...]) -> None:
    """Put PHONES on ACCOUNT's suppression list (nothing is added if one is no number)."""
    _change_list(account, phones, adding=True)


@suppress.command("remove")
@click.argument("account")
@click.argument("phones", nargs=-1, required=True)
def suppress_remove(account: str, phones: tuple[str, ...]) -> None:
    """Take PHONES off ACCOUNT's suppression list: bulk jobs stored from now on send to them again."""
    _change_list(account, phones, adding=False)


@suppress.command("list")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True, help='Machine-readable: {"list", "count", "phones": [...]}.')
@click.option("--reveal-phones", is_flag=True, help=REVEAL_HELP)
def suppress_list(account: str, as_json: bool, reveal_phones: bool) -> None:
    """Print every phone on ACCOUNT's suppression list (sorted), then how many."""
    from dispatcher.errors import DispatchError
    from dispatcher.phones import mask

    provider, name = account_argument(account, None)
    d = _dispatcher()
    try:
        listed = sorted(d.suppression_list(provider, name))
    except DispatchError as exc:
        raise click.ClickException(str(exc)) from None
    shown = listed if reveal_phones else [mask(p) for p in listed]
    if as_json:
        click.echo(json.dumps({"list": _list_name(provider, name), "count": len(listed), "phones": shown}))
        return
    for phone in shown:
        click.echo(phone)
    click.echo(f"{len(listed)} on the suppression list of {_list_name(provider, name)}", err=True)


@suppress.command("import")
@click.argument("account")
@click.argument("csv_path", metavar="CSV", type=click.Path(exists=True, dir_okay=False))
def suppress_import(account: str, csv_path: str) -> None:
    """Add every phone of CSV (its first column; a header row is skipped) to ACCOUNT's list.

    A row whose first cell is no number is reported on stderr (masked, with its place among
    the rows read) and skipped; the others are added. Prints {"list", "read", "added", "already", "invalid"}.
    """
    from dispatcher.errors import DispatchError
    from dispatcher.phones import describe_bad
    from dispatcher.suppression import list_phone

    provider, name = account_argument(account, None)
    rows, _ = _read_csv(csv_path)
    valid = []
    for i, raw in enumerate(rows):
        if list_phone(raw) is None:
            click.echo(f"skipped phone {i + 1}: {describe_bad(raw)}", err=True)
        else:
            valid.append(raw)
    d = _dispatcher()
    try:
        added = d.suppress(provider, name, valid) if valid else 0
    except DispatchError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"list": _list_name(provider, name), "read": len(rows), "added": added,
                           "already": len({list_phone(p) for p in valid}) - added,
                           "invalid": len(rows) - len(valid)}))


def _load_accounts() -> Any:
    """The configured accounts (settings' accounts file) without touching Redis; a message, not a traceback."""
    from dispatcher.config.accounts import load_accounts
    from dispatcher.config.settings import load_settings
    from dispatcher.errors import ConfigurationError

    try:
        return load_accounts(load_settings().accounts_file)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def _templates_doc(accounts: Any) -> list[dict[str, Any]]:
    """Each account of the gateway that sends templates (opass) with its declared templates, sorted by
    account and code."""
    from dispatcher.providers import registry

    provider = registry.send_check("template")[0].name
    return [
        {"account": f"{a.provider}:{a.name}",
         "templates": [{"code": t.code, "variables": [{"name": v.name, "max_len": v.max_len} for v in t.variables],
                        "text": t.text} for _, t in sorted(a.templates.items(), key=lambda kv: (len(kv[0]), kv[0]))]}
        for a in sorted(accounts, key=lambda a: a.name) if a.provider == provider
    ]


@main.command()
@click.option("--json", "as_json", is_flag=True,
              help='Machine-readable: {"accounts": [{"account", "templates": [{"code", "variables", "text"}]}]}.')
def templates(as_json: bool) -> None:
    """List the opass templates the accounts file declares: code, variables with their max lengths, text.

    A send naming a declared template is checked against it before anything is
    stored; any other template code is sent unchecked.
    """
    doc = _templates_doc(_load_accounts())
    if as_json:
        click.echo(json.dumps({"accounts": doc}, ensure_ascii=False))
        return
    if not doc:
        click.echo("no opass account configured")
    for account in doc:
        if not account["templates"]:
            click.echo(f"{account['account']}: no template declared (sends are not checked)")
        for t in account["templates"]:
            variables = ", ".join(f"{v['name']} ≤ {v['max_len']}" for v in t["variables"]) or "no variable"
            click.echo(f"{account['account']} {t['code']}  {variables}\n    {t['text']}")


@main.group()
def vsms() -> None:
    """aiofish video SMS templates: submit one for audit, ask its audit state."""


@vsms.command("submit")
@click.argument("account")
@click.option("--title", required=True, help="The template's title (at most 100 characters).")
@click.option("--frame", "frames", multiple=True, required=True,
              help='One frame, in order: text:"TEXT" (may hold #p_1#..#p_5#) or file:PATH (an image, video…).')
def vsms_submit(account: str, title: str, frames: tuple[str, ...]) -> None:
    """Submit a video SMS template of aiofish account ACCOUNT for audit; print its id.

    Sends are refused while it is pending; the audit push (or ``vsms status``) records the result.
    """
    from dispatcher.errors import ConfigurationError, ProviderError, ValidationError
    from dispatcher.providers.aiofish.vsms_templates import frames_of, submit_template

    d = _dispatcher()
    try:
        items, files = frames_of(frames)
        click.echo(submit_template(d.runtime, account, title, items, files))
    except (ValidationError, ConfigurationError, ProviderError) as exc:
        raise click.ClickException(str(exc)) from None


@vsms.command("status")
@click.argument("account")
@click.argument("tpl_id")
def vsms_status(account: str, tpl_id: str) -> None:
    """Ask the gateway for template TPL_ID's audit state, keep it, print it (100 pending, 200, 400)."""
    from dispatcher.errors import ConfigurationError, ProviderError, ValidationError
    from dispatcher.providers.aiofish.vsms_templates import query_template
    from dispatcher.template_audits import APPROVED, PENDING

    d = _dispatcher()
    try:
        audit = query_template(d.runtime, account, tpl_id)
    except (ValidationError, ConfigurationError, ProviderError) as exc:
        raise click.ClickException(str(exc)) from None
    word = {PENDING: "pending", APPROVED: "approved"}.get(audit.state, "rejected")
    click.echo(f"{audit.tpl_id} {audit.state} {word}" + (f": {audit.reason}" if audit.reason else ""))


@main.command()
def balance() -> None:
    """Remaining balance of every configured account (within the gateways' query limits)."""
    from dispatcher.runtime import get_runtime

    rt = get_runtime()
    for acct in rt.accounts:
        if not _has_balance(rt, acct):
            continue
        waited = rt.limiter.acquire(acct.provider, acct.name, "balance", max_wait_s=30.0)
        if waited < 0:
            click.echo(f"{acct.provider}:{acct.name}: rate limit, try again in {-waited:.0f} s")
            continue
        try:
            bal = rt.client(acct.provider, acct.name).balance()
        except Exception as exc:  # noqa: BLE001 - shown to the operator as is
            click.echo(f"{acct.provider}:{acct.name}: {exc}")
            continue
        items = ", ".join(f"{i.name}={i.remaining}" for i in bal.items)
        click.echo(f"{acct.provider}:{acct.name}: {items}")


def _statistics_gateways() -> list[str]:
    """The gateways with a send statistics query (a ``statistics`` limit in their plug): opass."""
    from dispatcher.providers import registry

    return [p.name for p in registry.gateways() if "statistics" in p.limits]


@main.command()
@click.argument("account")
@click.option("--provider", type=click.Choice(_statistics_gateways()), default=_statistics_gateways()[0],
              show_default=True, help="The gateway the account is of.")
@click.option("--from", "start", required=True, help="yyyy-MM-dd")
@click.option("--to", "end", required=True, help="yyyy-MM-dd")
@click.option("--page", default=1, show_default=True)
def stats(account: str, provider: str, start: str, end: str, page: int) -> None:
    """Send statistics per day, as the gateway counts them (opass: 4 calls a minute at most)."""
    from dispatcher.runtime import get_runtime

    rt = get_runtime()
    if rt.limiter.acquire(provider, account, "statistics", max_wait_s=30.0) < 0:
        raise click.ClickException("statistics budget used up; try again in a minute")
    result = rt.client(provider, account).statistics(start, end, page=page, page_size=50)
    for row in result.rows:
        click.echo(f"{row.send_date}: total {row.total} success {row.success} failed {row.failed} "
                   f"no-receipt {row.no_receipt}")
    click.echo(f"({len(result.rows)} of {result.total_size} rows, page {result.page})")


def _clock_skew_s(base_url: str, timeout_s: float = 5.0) -> float:
    """Local clock minus the gateway's (from its HTTP Date header, 1 s resolution)."""
    import email.utils
    import time

    import requests

    resp = requests.get(base_url.rstrip("/") + "/", timeout=timeout_s, allow_redirects=False)
    header = resp.headers.get("Date")
    if not header:
        raise click.ClickException("no Date header")
    return time.time() - email.utils.parsedate_to_datetime(header).timestamp()


def _push_check(acct: Any) -> tuple[str, bool, str]:
    """Whether the webhook will serve the account's pushes, and in which form (never the secret)."""
    if acct.hook_problem:
        return ("pushes", False, f"{acct.hook_problem}: the webhook refuses this account's pushes")
    if not acct.callback_secret:
        return ("pushes", True, "no callback_secret: pushes refused, receipts by pull only")
    form = f", push_variant {acct.push_variant}" if acct.push_variant else ""
    return ("pushes", True, f"callback_secret set ({len(acct.callback_secret)} characters){form}")


@main.command()
def doctor() -> None:
    """Check Redis's memory settings, then each account: connectivity, clock skew, credentials."""
    import redis

    from dispatcher.errors import ConfigurationError
    from dispatcher.redis_checks import memory_summary, memory_warnings, replication_check
    from dispatcher.redis_connection import connect
    from dispatcher.runtime import get_runtime

    # An unusable accounts file, setting or Redis is a finding to report, not a traceback.
    try:
        rt = get_runtime()
    except ConfigurationError as exc:
        click.echo(f"BAD configuration: {exc}")
        sys.exit(1)
    try:
        # One try, not the retries a worker uses to ride out a Redis restart (~20 s): an
        # operator asking whether Redis is up wants the answer now.
        probe = connect(rt.settings, retries=0)
        warnings = memory_warnings(probe)
        summary = memory_summary(probe)
        replication = replication_check(probe, rt.settings.replicas_to_wait) if rt.settings.redis_sentinels else None
    except redis.RedisError as exc:  # its message names host and port, never a password
        click.echo(f"BAD redis: {type(exc).__name__}: {exc}")
        sys.exit(1)
    failed = False
    if replication is not None:
        failed = not replication[0]
        click.echo(f"{'ok ' if replication[0] else 'BAD'} redis replication: {replication[1]}")
    click.echo(f"{'WARN' if warnings else 'ok '} redis memory: {summary}")
    for warning in warnings:  # a warning, not a failure: the accounts can still send
        click.echo(f"WARN redis memory: {warning}")
    for acct in rt.accounts:
        name = f"{acct.provider}:{acct.name}"
        base = acct.gateway.base_url
        checks: list[tuple[str, bool, str]] = [_push_check(acct)]
        try:
            skew = _clock_skew_s(base)
            checks.append(("reachable", True, base))
            checks.append(("clock", abs(skew) < 50, f"skew {skew:+.1f} s (gateway allows ±60 s)"))
        except Exception as exc:  # noqa: BLE001 - reported to the operator
            checks.append(("reachable", False, f"{base}: {type(exc).__name__}"))
        if not _has_balance(rt, acct):
            pass  # a channel without a balance query (vsms): its account's credentials are checked as SMS's
        elif rt.limiter.acquire(acct.provider, acct.name, "balance", max_wait_s=20.0) < 0:
            checks.append(("credentials", False, "balance query budget used up; retry in a minute"))
        else:
            try:
                total = rt.client(acct.provider, acct.name).balance().total
                checks.append(("credentials", True, f"balance {total}"))
            except Exception as exc:  # noqa: BLE001 - reported to the operator
                checks.append(("credentials", False, str(exc)))
        for what, ok, detail in checks:
            failed |= not ok
            click.echo(f"{'ok ' if ok else 'BAD'} {name} {what}: {detail}")
    click.echo(_receipts_line(rt))
    sys.exit(1 if failed else 0)


def _has_balance(rt: Any, acct: Any) -> bool:
    """Whether the account's channel has a balance query (its plug says; video and international SMS have none)."""
    del rt
    from dispatcher.providers import registry

    return registry.gateway(acct.provider).has_balance


def _receipts_line(rt: Any) -> str:
    """The receipt stream's backlog and the receipts refused as evidence so far (a probe shows here)."""
    backlog = rt.redis.xlen(rt.keys.receipt_stream())
    names = ("receipts_foreign", "receipts_unclaimed", "receipts_unmatched")
    counts = dict(zip(names, (int(v or 0) for v in rt.redis.hmget(rt.keys.stats(), names)), strict=True))
    refused = ", ".join(f"{k.removeprefix('receipts_')} {v}" for k, v in counts.items())
    return f"ok  receipts: {backlog} recorded and not yet applied; refused so far: {refused}"


@main.command()
@click.option("--bind", default="127.0.0.1:8900", show_default=True, help="host:port to listen on.")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
def webhook(bind: str, workers: int) -> None:
    """Serve the receipt webhook (WSGI) with gunicorn."""
    import os

    from dispatcher.webhook_server import webhook_argv

    argv = webhook_argv(bind, workers, access_log=True)
    os.execvp(sys.executable, argv)  # noqa: S606 - become gunicorn; fixed argument list, no shell


@main.command()
@click.option("--bind", default="127.0.0.1:9808", show_default=True, help="host:port to listen on (port 0: any free).")
def metrics(bind: str) -> None:
    """Serve a worker host's Prometheus metrics at /metrics: the worker's processes (the files under
    PROMETHEUS_MULTIPROC_DIR, the same directory the worker was started with) and the ledger's
    gauges read from Redis at each scrape."""
    from dispatcher.metrics_export import LedgerCollector, multiproc_dir, scrape_registry
    from dispatcher.metrics_server import exporter_server
    from dispatcher.runtime import get_runtime

    if not multiproc_dir():
        # Without it the pool processes' counts live and die in each process: say so, then serve the ledger.
        click.echo("PROMETHEUS_MULTIPROC_DIR is not set: serving the ledger's gauges only, no worker counters",
                   err=True)
    try:
        server = exporter_server(bind, scrape_registry(LedgerCollector(get_runtime())))
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"metrics on http://{bind.rpartition(':')[0]}:{server.server_port}/metrics", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@main.command()
@click.option("--recipients", default=100_000, show_default=True, help="Campaign size, split 60/40 opass/aiofish.")
@click.option("--otps", default=5, show_default=True, help="OTPs sent while the campaign runs.")
@click.option("--workers", default=1, show_default=True,
              help="Celery worker processes to start (as the Procfile's worker line: -P threads).")
@click.option("--concurrency", type=int, default=None,
              help="Threads of each worker's pool (default: SMSD_SEND_CONCURRENCY, 128).")
@click.option("--dir", "base_dir", type=click.Path(file_okay=False),
              help="Where logs and data go (default: a temp dir).")
def demo(recipients: int, otps: int, workers: int, concurrency: int | None, base_dir: str | None) -> None:
    """Run everything locally and send a campaign end to end; exit 1 if anything was lost or duplicated."""
    from dispatcher.local.demo import run_demo

    result = run_demo(recipients=recipients, otps=otps, workers=workers, concurrency=concurrency,
                      base_dir=base_dir, say=lambda line: click.echo(line))
    sys.exit(0 if result.ok else 1)
