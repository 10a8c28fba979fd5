"""Gateway protocol clients; what the rest of the code may ask about a gateway by name."""

#: Gateways whose receipt query filters by our client id (opass ``bid``): an
#: ambiguous chunk of theirs is asked about before it is resent. aiofish's
#: getReport takes no such filter, so its chunks wait for pushes and polls only.
QUERY_BY_CLIENT_ID: frozenset[str] = frozenset({"opass"})
