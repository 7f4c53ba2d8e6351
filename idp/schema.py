"""Is the database at the latest Alembic migration? Asked by every `idp` command and /readyz."""

from __future__ import annotations

from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask

from idp.extensions import db

NOT_INITIALISED = "the database is not initialised: run `idp init`"


@dataclass(frozen=True)
class SchemaState:
    current: frozenset[str]  # revisions recorded in the database (empty: no schema)
    heads: frozenset[str]  # latest revisions of the migrations shipped with this code

    @property
    def up_to_date(self) -> bool:
        return bool(self.current) and self.current == self.heads

    def describe(self) -> str:
        if self.up_to_date:
            return "up to date"
        if not self.current:
            return NOT_INITIALISED
        return (f"{NOT_INITIALISED} (the database is at revision {', '.join(sorted(self.current))}, "
                f"this code expects {', '.join(sorted(self.heads))})")


def head_revisions(app: Flask) -> frozenset[str]:
    heads = app.extensions.get("idp_schema_heads")
    if heads is None:
        directory = app.extensions["migrate"].directory
        heads = app.extensions["idp_schema_heads"] = frozenset(
            ScriptDirectory(directory).get_heads())
    return heads


def schema_state(app: Flask) -> SchemaState:
    """Read the database's Alembic revision (raises SQLAlchemyError if it cannot be reached)."""
    with db.engine.connect() as connection:
        current = frozenset(MigrationContext.configure(connection).get_current_heads())
    return SchemaState(current, head_revisions(app))
