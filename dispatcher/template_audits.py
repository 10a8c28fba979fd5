"""Template audit results (vsms templates are audited by the vendor before they may be sent).

Each result, pushed by the vendor or read by ``sms-dispatch vsms status``, is kept
in Redis (:meth:`dispatcher.keys.Keys.template_audit`); a send naming a template
known to be pending or rejected is refused before anything is stored. A template
never seen is sent: the gateway decides (and answers ``invalid_tpl`` if it must).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from dispatcher.keys import Keys
from dispatcher.ledger import as_text

PENDING, APPROVED, REJECTED = 100, 200, 400
#: How long an audit result is kept after its last push or query: templates outlive jobs.
TEMPLATE_AUDIT_TTL_S = 90 * 86_400


@dataclass(frozen=True, slots=True)
class Audit:
    """A template's audit state (100 pending, 200 approved, 400 rejected), the vendor's reason, when learnt."""

    tpl_id: str
    state: int
    reason: str = ""
    at_ms: int = 0

    @property
    def refusal(self) -> str | None:
        """Why a send naming this template is refused before queueing, or ``None`` if it may go."""
        if self.state == REJECTED:
            return f"template {self.tpl_id} was rejected in audit" + (f": {self.reason}" if self.reason else "")
        if self.state == PENDING:
            return f"template {self.tpl_id} is still pending audit"
        return None


def store_audit(client: redis.Redis, keys: Keys, provider: str, account: str, audit: Audit) -> None:
    """Keep ``audit`` as the template's latest known state. Raises ``redis.RedisError``."""
    doc = {"state": audit.state, "reason": audit.reason, "at_ms": audit.at_ms}
    client.set(keys.template_audit(provider, account, audit.tpl_id), json.dumps(doc, ensure_ascii=False),
               ex=TEMPLATE_AUDIT_TTL_S)


def read_audit(client: redis.Redis, keys: Keys, provider: str, account: str, tpl_id: str) -> Audit | None:
    """The template's last known audit state, or ``None`` if none is kept."""
    raw = client.get(keys.template_audit(provider, account, tpl_id))
    if raw is None:
        return None
    doc = json.loads(as_text(raw))
    return Audit(tpl_id, int(doc["state"]), str(doc.get("reason") or ""), int(doc.get("at_ms") or 0))
