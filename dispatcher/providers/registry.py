"""The gateways sms-dispatch sends through, and all the send path may know of one.

Each gateway declares itself once, as a :class:`Gateway` plug in its own module
(``opass/plug.py``, ``aiofish/plug.py`` …): how to build its client, its job kinds
(chunk limit and the one call that sends a chunk), its documented rate limits,
how to read its pushes, what beat polls, whether an ambiguous chunk can be asked
about by our id. This module lists the plugs; the runtime, the sender, the
webhook, the limiter, the sweeps and the workers ask it, and never name a
gateway. A third gateway is one plug and one :func:`register` call.

Light to import: a plug loads its HTTP client only when a client is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dispatcher.errors import ConfigurationError
from dispatcher.limits import Limit

#: ``(account config, body, WSGI environ) -> (items, answer body, answer content type)``;
#: raises ``PushVerificationError`` (or anything: the webhook answers 400) for a hostile body.
PushParser = Callable[[Any, bytes, dict[str, Any]], tuple[list[Any], bytes, str]]
#: ``(client, job meta, phones, per-phone payloads or None, our client id) -> SendResult``.
ChunkSender = Callable[[Any, Mapping[str, str], Sequence[str], Sequence[Any] | None, str], Any]
#: ``(account config, **the send call's job-shaping keyword arguments) -> (JobSpec, chunk size)``:
#: a ``Dispatcher.send_<form>`` call's checks; raises ``ValidationError`` listing every problem.
SendCheck = Callable[..., tuple[Any, int]]


@dataclass(frozen=True, slots=True)
class RoutedForm:
    """How one account sends a route's template (:mod:`dispatcher.routes`): the producer call
    (``form``, e.g. ``"template"``) with its fixed arguments, then the values: ``same(values)`` →
    the arguments for one set of values for every phone, ``each(values)`` → one phone's payload
    in that call's ``recipients``."""

    form: str
    arguments: Mapping[str, Any]
    same: Callable[[list[str]], dict[str, Any]]
    each: Callable[[list[str]], Any]


#: ``(account config, template, the route entry's options) -> RoutedForm``; raises
#: ``ConfigurationError`` saying why this account cannot send that template.
RouteForm = Callable[[Any, Any, Mapping[str, Any]], RoutedForm]


@dataclass(frozen=True, slots=True)
class JobKind:
    """One kind of job a gateway sends (``opass.send`` …): its chunk size and the call that sends a chunk."""

    name: str
    chunk_limit: int
    send: ChunkSender


@dataclass(frozen=True, slots=True)
class Gateway:
    """Everything the send path needs to know of one gateway (see the module doc)."""

    name: str
    #: The account settings class the accounts file's entries under ``name`` become.
    account_class: type
    #: Builds a protocol client from one account's settings (loads the HTTP client lazily).
    client: Callable[[Any], Any]
    kinds: tuple[JobKind, ...]
    #: operation → the limits one call of it consumes, as the manual documents them.
    limits: Mapping[str, tuple[Limit, ...]] = field(default_factory=dict)
    #: Reads a push to its hook (``None``: the gateway pushes nothing we take).
    parse_push: PushParser | None = None
    #: limiter operation → client method beat calls at that operation's pace (receipts, replies).
    polls: Mapping[str, str] = field(default_factory=dict)
    #: Whether its receipt query filters by our client id: an ambiguous chunk is
    #: then asked about before it is resent (else it waits for pushes and polls).
    query_by_client_id: bool = False
    #: An account of this gateway with placeholder credentials, for ``FakeDispatcher`` (never sent anywhere).
    placeholder: Callable[[str], Any] = lambda name: None
    #: Whether its client can ask for the account's balance (the balance guard's source).
    has_balance: bool = True
    #: Modules a worker imports up front, so forked pool processes share them.
    preload: tuple[str, ...] = ()
    #: What names an account at the vendor (two entries naming one vendor account are refused).
    identity: Callable[[Any], str] = lambda gateway: str(getattr(gateway, "name", ""))
    #: Fields of an accounts-file entry that are this gateway's own (not its client's
    #: settings), taken out before ``${VAR}`` expansion ...
    raw_fields: tuple[str, ...] = ()
    #: ... and turned into ``AccountConfig`` extras: ``(fields, client settings, where) -> kwargs``;
    #: raises ``ConfigurationError`` naming ``where``.
    account_extras: Callable[[dict[str, Any], Any, str], dict[str, Any]] = lambda _fields, _gateway, _where: {}
    #: A channel of another gateway's accounts (e.g. ``"aiofish"``): the accounts file has no
    #: entries under this plug's name; each account of that gateway is also an account of this
    #: channel, with the same settings and callback secret (its own limits are the plug's).
    accounts_of: str | None = None
    #: Why an account of ``accounts_of`` cannot be an account of this channel (settings it lacks),
    #: or ``None``: ``(account settings) -> problem``. Such an account is left out of the
    #: channel and a send through it is refused naming the problem.
    cannot_serve: Callable[[Any], str | None] = lambda _gateway: None
    #: Keeps what its pushes carry besides receipts and uplinks (a template audit):
    #: ``(runtime, account config, items) -> None``; raises ``redis.RedisError`` (answered 503).
    keep_items: Callable[[Any, Any, list[Any]], None] | None = None
    #: The producer calls it serves: ``"template"`` → the checks of ``Dispatcher.send_template``,
    #: which sends through this gateway's accounts. Each form belongs to one gateway.
    sends: Mapping[str, SendCheck] = field(default_factory=dict)
    #: The vendor's code table (code → its meaning): a metric keeps a code as a label only if it is
    #: here, so a gateway answering codes nobody documented cannot grow a label without bound.
    codes: Mapping[str, Any] = field(default_factory=dict)
    #: How an account of this gateway sends a route's template (``None``: it cannot be in a route).
    route: RouteForm | None = None


def settings_of(account: Any, cls: type, channel: str) -> Any:
    """``account.gateway`` if it is a ``cls`` (what a plug's client factory needs); raises
    ``ConfigurationError`` naming the channel and the account otherwise."""
    if not isinstance(account.gateway, cls):
        raise ConfigurationError(f"{channel}:{account.name} is not configured as a {cls.__name__}")
    return account.gateway


_GATEWAYS: dict[str, Gateway] = {}


def register(plug: Gateway) -> None:
    """Add (or replace) a gateway; its job kinds and send forms must not clash with another gateway's."""
    for other in _GATEWAYS.values():
        if other.name != plug.name and {k.name for k in other.kinds} & {k.name for k in plug.kinds}:
            raise ConfigurationError(f"gateway {plug.name!r} declares job kinds {other.name!r} already has")
        if other.name != plug.name and set(other.sends) & set(plug.sends):
            raise ConfigurationError(f"gateway {plug.name!r} declares send forms {other.name!r} already has")
    _GATEWAYS[plug.name] = plug


def unregister(name: str) -> None:
    """Remove a gateway (tests that plug in a toy one)."""
    _GATEWAYS.pop(name, None)


def _builtin() -> None:
    if not _GATEWAYS:
        from dispatcher.providers.aiofish import isms_plug as aiofish_isms_plug
        from dispatcher.providers.aiofish import plug as aiofish_plug
        from dispatcher.providers.aiofish import vsms_plug as aiofish_vsms_plug
        from dispatcher.providers.opass import plug as opass_plug

        register(opass_plug.PLUG)
        register(aiofish_plug.PLUG)
        register(aiofish_vsms_plug.PLUG)
        register(aiofish_isms_plug.PLUG)


def gateways() -> Iterator[Gateway]:
    """Every registered gateway, in registration order."""
    _builtin()
    return iter(list(_GATEWAYS.values()))


def names() -> tuple[str, ...]:
    """The registered gateways' names."""
    return tuple(g.name for g in gateways())


def gateway(name: str) -> Gateway:
    """The plug named ``name``; raises ``ConfigurationError`` naming the known ones."""
    _builtin()
    plug = _GATEWAYS.get(name)
    if plug is None:
        raise ConfigurationError(f"unknown gateway {name!r}; known: {', '.join(_GATEWAYS)}")
    return plug


def job_kind(name: str) -> JobKind:
    """The job kind ``name`` of whichever gateway declares it; raises ``ConfigurationError``."""
    for plug in gateways():
        for kind in plug.kinds:
            if kind.name == name:
                return kind
    raise ConfigurationError(f"unknown job kind {name!r}")


def send_check(form: str) -> tuple[Gateway, SendCheck]:
    """The gateway serving ``Dispatcher.send_<form>`` and that call's checks; raises ``KeyError``
    naming the known forms."""
    for plug in gateways():
        if form in plug.sends:
            return plug, plug.sends[form]
    raise KeyError(f"no gateway sends {form!r}; known: {', '.join(send_forms())}")


def send_forms() -> tuple[str, ...]:
    """Every ``send_<form>`` some gateway serves, sorted."""
    return tuple(sorted(form for plug in gateways() for form in plug.sends))


def chunk_limits() -> dict[str, int]:
    """Job kind → the most recipients one call of it takes."""
    return {k.name: k.chunk_limit for plug in gateways() for k in plug.kinds}


def documented_limits(provider: str, op: str) -> tuple[Limit, ...]:
    """What one ``op`` call of ``provider`` consumes, as its manual documents it (``()`` if unlimited/unknown)."""
    _builtin()
    plug = _GATEWAYS.get(provider)
    return tuple(plug.limits.get(op, ())) if plug else ()
