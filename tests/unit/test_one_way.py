"""One way to do each thing (issue 7): checks over the source of idp/."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "idp"


def calls_of(name: str) -> list[str]:
    """Where ``name(...)`` is called in idp/, as ``path:line``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == name:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_users_are_created_in_one_place():
    """accounts.create_user: the CLI, invitations, registration and company sign-up."""
    [place] = calls_of("User")
    assert place.startswith("idp/services/accounts.py:")


def test_link_tokens_are_checked_and_used_in_one_place():
    """account_tokens.peek / peek_id / use / consume: no journey re-implements them."""
    for path in sorted((PACKAGE / "services").glob("*.py")):
        if path.name == "account_tokens.py":
            continue
        source = path.read_text(encoding="utf-8")
        for sign in ("update(AccountToken)", "row.expires_at <=", "row.used_at is not None"):
            assert sign not in source, f"{path.name} checks link tokens itself ({sign})"


def test_config_defaults_are_written_once_in_config_py():
    import re

    pattern = re.compile(r"""config\.(get|setdefault)\(\s*["']IDP_""")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE.parent))
        if name == "idp/config.py":
            continue
        source = path.read_text(encoding="utf-8")
        offenders += [f"{name}: {m.group(0)}" for m in pattern.finditer(source)]
        if "_env_int" in source or "_env(" in source:
            offenders.append(f"{name} reads the environment itself")
    assert offenders == []


def test_every_setting_has_its_default_in_load_config(app):
    from idp.config import load_config

    defaults = load_config()
    for key in ("IDP_VERIFY_TTL", "IDP_SIGNUP_TTL", "IDP_EMAIL_CHANGE_TTL",
                "IDP_REGISTRATION_EMAIL_LIMIT", "IDP_EMAIL_CHANGE_LIMIT",
                "IDP_REGISTER_IP_LIMIT", "IDP_REGISTER_IP_WINDOW", "IDP_STEP_UP_MAX_AGE",
                "IDP_SMTP_TIMEOUT", "IDP_MAIL_BATCH", "IDP_MAIL_RETENTION_DAYS"):
        assert key in defaults and app.config[key] == defaults[key], key


def test_flows_are_named_one_way():
    """flows/<flow>.py: logic, no blueprint; flows/<flow>_views.py: the blueprint."""
    for path in sorted((PACKAGE / "flows").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        has_blueprint = "Blueprint(" in source
        assert has_blueprint == path.name.endswith("_views.py"), path.name
