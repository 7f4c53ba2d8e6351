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
