"""Mint N refresh tokens for the bench, each in its own grant cloned from a real one.

The grant comes from a real authorization code flow over HTTP (bench/loadgen.code_flow);
its clones differ only in id, so each token is a device's own family and the refresh
scenario uses each token once (rotation and reuse detection as in production).
Usage: python bench/seed_refresh.py REFRESH_TOKEN COUNT OUTFILE   (prints the count)
"""

from __future__ import annotations

import secrets
import sys
import time

from sqlalchemy import insert

from idp import create_app
from idp.extensions import db
from idp.models import Grant, Token
from idp.models.oauth import digest
from idp.services.tokens import find_refresh_token


def main() -> None:
    refresh_token, count, outfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    app = create_app()
    with app.app_context():
        row = find_refresh_token(refresh_token)
        if row is None:
            sys.exit("seed_refresh: unknown refresh token")
        grant = row.grant
        columns = [c.key for c in Grant.__table__.columns if c.key not in ("id", "code_hash")]
        now = int(time.time())
        # ORM bulk INSERTs (a list of dicts, not objects): batched statements, no unit of
        # work; the grants' ids come back in the order of their rows.
        values = {c: getattr(grant, c) for c in columns}
        ids = db.session.scalars(
            insert(Grant).returning(Grant.id, sort_by_parameter_order=True),
            [values] * count).all()
        tokens = [secrets.token_urlsafe(32) for _ in range(count)]
        db.session.execute(insert(Token), [
            {"jti": secrets.token_urlsafe(16), "client_id": row.client_id,
             "user_id": row.user_id, "tenant_id": row.tenant_id, "grant_id": grant_id,
             "scope": row.scope, "issued_at": now, "access_expires_at": row.access_expires_at,
             "refresh_hash": digest(value), "refresh_expires_at": row.refresh_expires_at}
            for grant_id, value in zip(ids, tokens, strict=True)])
        db.session.commit()
    with open(outfile, "w") as out:
        out.write("\n".join(tokens) + "\n")
    print(len(tokens))


if __name__ == "__main__":
    main()
