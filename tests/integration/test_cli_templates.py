"""`sms-dispatch templates` lists the declared opass templates, run as an operator runs it: the installed command."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dispatcher.local.demo import accounts_doc
from tests.integration.processes import cli

TEMPLATES = {"1000000000000000003": "{姓名,10}您好，您本次收入${金额,10}元。",
             "1000000000000000002": "您的验证码是{验证码,6}，5分钟内有效。"}


def _env(tmp_path: Path, templates: Any) -> dict[str, str]:
    doc = accounts_doc("http://127.0.0.1:9")
    doc["opass"][0]["templates"] = templates
    doc["opass"].append({"name": "bare", "api_key": "k2", "access_key": "a2", "base_url": "http://127.0.0.1:9"})
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    # No SMSD_REDIS_URL: listing templates must not need Redis (nor start the embedded one).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSD_")}
    return env | {"SMSD_ACCOUNTS_FILE": str(path), "SMSD_DATA_DIR": str(tmp_path / "data")}


def test_templates_lists_each_declared_template_with_its_variables_and_text(tmp_path: Path) -> None:
    env = _env(tmp_path, TEMPLATES)
    shown = cli("templates", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "opass:bare: no template declared (sends are not checked)",
        "opass:demo 1000000000000000002  验证码 ≤ 6",
        "    您的验证码是{验证码,6}，5分钟内有效。",
        "opass:demo 1000000000000000003  姓名 ≤ 10, 金额 ≤ 10",
        "    {姓名,10}您好，您本次收入${金额,10}元。",
    ]
    assert not (tmp_path / "data").exists()


def test_templates_json_gives_code_variables_and_text_per_account(tmp_path: Path) -> None:
    shown = cli("templates", "--json", env=_env(tmp_path, TEMPLATES))
    assert shown.returncode == 0, shown.stderr
    demo = next(a for a in json.loads(shown.stdout)["accounts"] if a["account"] == "opass:demo")
    assert demo["templates"][1] == {"code": "1000000000000000003", "text": TEMPLATES["1000000000000000003"],
                                    "variables": [{"name": "姓名", "max_len": 10}, {"name": "金额", "max_len": 10}]}


def test_templates_reports_a_malformed_template_naming_the_account_and_template(tmp_path: Path) -> None:
    shown = cli("templates", env=_env(tmp_path, {"1000000000000000002": "您的验证码是{验证码}"}))
    assert shown.returncode == 1 and shown.stdout == ""
    assert "opass:demo) template 1000000000000000002: unmatched '{' at character 7" in shown.stderr
    assert "Traceback" not in shown.stderr
