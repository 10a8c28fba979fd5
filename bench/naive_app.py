"""The baseline Celery app of ``bench.naive``: one task per recipient, the pattern people write first.

``send_one(phone)`` signs and posts one opass ``/message/send`` for one phone
through our :class:`~dispatcher.providers.opass.OpassClient`. Everything else
is Celery's defaults, as a typical user leaves them: early acks, prefetch 4 per
process, the prefork pool, the default ``celery`` queue.

This is the anti-pattern the real worker (:mod:`workers`) avoids and exists
only to be measured against: the phone number travels in the task arguments
(so it sits in the broker, in Flower, in any log of task args), each recipient
costs a broker round trip and a gateway request, and an early-acked task whose
process dies is simply lost. Never use it for anything but this benchmark.

The broker is ``SMSD_REDIS_URL`` (a producer may set ``app.conf.broker_url``
instead); the worker's first task reads the ``demo`` opass account from
``SMSD_ACCOUNTS_FILE`` and raises ``KeyError`` if it is unset, ``ConfigurationError``
if it has no such account.
"""

from __future__ import annotations

import os

from celery import Celery

from dispatcher.config.accounts import load_accounts
from dispatcher.errors import ConfigurationError
from dispatcher.providers.opass.account import OpassAccount
from dispatcher.providers.opass.client import OpassClient

TEMPLATE = "1000000000000000002"  # 您的验证码是{验证码,6}，5分钟内有效。

app = Celery("naive_sms", broker=os.environ.get("SMSD_REDIS_URL"))
_client: OpassClient | None = None


def _opass() -> OpassClient:
    # Created on first use, so each forked pool process has its own connection pool.
    global _client
    if _client is None:
        account = load_accounts(os.environ["SMSD_ACCOUNTS_FILE"]).get("opass", "demo").gateway
        if not isinstance(account, OpassAccount):
            raise ConfigurationError("the accounts file's opass 'demo' entry is not an opass account")
        _client = OpassClient(account)
    return _client


@app.task(name="bench.naive_app.send_one")
def send_one(phone: str) -> str:
    """Send the benchmark's OTP text to ``phone``; return the gateway's message id."""
    return _opass().send([phone], TEMPLATE, ["123456"]).message_id
