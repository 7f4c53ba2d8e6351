"""Column helpers shared by the model modules."""

import time

from sqlalchemy import JSON, BigInteger, Integer
from sqlalchemy.dialects import postgresql

# Timestamps are integer seconds since the epoch: identical on every backend,
# cheap to compare, no timezone surprises between SQLite and PostgreSQL.
Epoch = BigInteger().with_variant(Integer(), "sqlite")
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


def now() -> int:
    return int(time.time())


MAX_ROW_ID = 2**31 - 1  # an Integer primary key on PostgreSQL


def row_id(value: object) -> int | None:
    """A primary key from a URL or a form, or None: ASCII digits within the column's range
    (``"²"`` passes ``isdigit()`` but not ``int()``; a larger number overflows the query)."""
    text = str(value if value is not None else "")
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ROW_ID else None
