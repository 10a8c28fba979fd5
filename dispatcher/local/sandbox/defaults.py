"""The sandbox's default configuration: the manuals' limits and the demo credentials.

Every duration carries its unit in its name; ``null`` for a limit means unlimited.
``config/sandbox.example.json`` shows the same shape.
"""

from __future__ import annotations

from typing import Any

from dispatcher.local.sandbox import demo

DEFAULT_LIMITS: dict[str, dict[str, float] | None] = {
    "opass_send": {"max": 300, "window_s": 1.0},  # ~300 TPS (FAQ)
    "opass_query": {"max": 3, "window_s": 60.0},  # query APIs 3/min per enterprise (FAQ)
    "opass_residue": {"max": 1, "window_s": 15.0},  # residueValue once per 15 s
    "opass_statistics": {"max": 4, "window_s": 60.0},  # statistics 4/min
    "aiofish_send": None,  # undocumented: unlimited unless configured
    "aiofish_balance": {"max": 1, "window_s": 5.0},  # "建议查询间隔为5秒"
    "aiofish_query": None,  # getReport/getReply: undocumented
    "vsms_request": None,  # per appKey, undocumented
    "isms_request": None,
}

DEFAULTS: dict[str, Any] = {
    "seed": 20240101,
    "time_scale": 1.0,
    "receipt_delay_s": 1.0,
    "receipt_mode": "both",
    "outcomes": {"DELIVRD": 0.95, "UNDELIV": 0.02, "REJECTD": 0.01, "EXPIRED": 0.01, "UNKNOWN": 0.01},
    "blacklist": [],
    "push_concurrency": 8,
    "push_timeout_s": 5.0,
    "push_backlog_max": 256,
    "opass_push_timeout_s": 1.0,
    "opass_push_slow_s": 1.0,
    "opass_push_stop_after": 3,
    "opass_push_batch": 100,
    "opass_pull_max": 600,
    "aiofish_report_max": 1000,
    "aiofish_pull_window_s": 48 * 3600.0,  # "状态报告有效期在48小时内"
    "pull_window_s": 6 * 3600.0,
    "messages_max": 10_000,
    "ledger_fold_recipients": 1_000_000,
    "batch_max": 1000,
    "opass_ts_window_s": 60.0,
    "opass_nonce_ttl_s": 120.0,
    "aiofish_ts_window_s": 300.0,
    "aiofish_require_signature": True,
    "vsms_ts_window_s": 300.0,
    "vsms_audit_delay_s": 5.0,
    "vsms_resource_max_bytes": 2 * 1024 * 1024,
    "vsms_mobile_max": 1000,
    "limits": DEFAULT_LIMITS,
    "opass": {
        "src_id": "1069000012345",
        "templates": dict(demo.OPASS_TEMPLATES),
        "accounts": {
            demo.OPASS_API_KEY: {
                "access_key": demo.OPASS_ACCESS_KEY,
                "balance": {"行业短信": 100_000_000, "会员短信": 10_000_000, "推广短信": 10_000_000},
                "ip_whitelist": None,
                "signature": "",
                "status_url": None,
                "uplink_url": None,
                "limits": {},
            }
        },
    },
    "aiofish": {
        "isms_templates": {},
        "accounts": {
            demo.AIOFISH_ACCOUNT: {
                "password": demo.AIOFISH_PASSWORD,
                "app_key": demo.AIOFISH_APP_KEY,
                "app_secret": demo.AIOFISH_APP_SECRET,
                "aes_key": demo.AIOFISH_AES_KEY,
                "balance": 100_000_000,
                "push_mode": "plain",
                "report_url": None,
                "reply_url": None,
                "vsms_status_url": None,
                "vsms_audit_url": None,
                "isms_status_url": None,
                "limits": {},
            }
        },
    },
}
