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
