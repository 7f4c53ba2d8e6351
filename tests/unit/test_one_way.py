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
