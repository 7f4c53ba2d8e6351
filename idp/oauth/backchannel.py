"""Back-channel logout 1.0: signed logout tokens POSTed to each client of a session."""

from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from flask import current_app
from sqlalchemy import select

from idp.extensions import db
from idp.models import Client, Grant

log = logging.getLogger(__name__)
EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_token(keystore, issuer: str, client: Client, sub: str, sid: str) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "aud": client.client_id, "iat": now, "exp": now + 120,
              "jti": secrets.token_urlsafe(16), "sub": sub, "sid": sid, "events": {EVENT: {}}}
    return keystore.sign(claims, client.id_token_signed_response_alg or "RS256", "logout+jwt")


def _post(uri: str, token: str, timeout: float) -> bool:
    try:
        response = requests.post(uri, data={"logout_token": token}, timeout=timeout,
                                 allow_redirects=False)
    except requests.RequestException as exc:
        log.warning("back-channel logout to %s failed: %s", uri, exc)
        return False
    if response.status_code != 200:
        log.warning("back-channel logout to %s answered %s", uri, response.status_code)
    return response.status_code == 200


def notify(sid: str, sub: str) -> dict[str, bool]:
    """Tell every client that received tokens in this session; returns client_id -> delivered."""
    clients = list(db.session.scalars(
        select(Client).join(Grant, Grant.client_id == Client.client_id)
        .where(Grant.sid == sid, Client.backchannel_logout_uri.is_not(None)).distinct()))
    if not clients:
        return {}
    keystore = current_app.extensions["idp_keys"]
    issuer = current_app.config["IDP_ISSUER"]
    timeout = current_app.config["IDP_BACKCHANNEL_TIMEOUT"]
    jobs = {c.client_id: (c.backchannel_logout_uri, logout_token(keystore, issuer, c, sub, sid))
            for c in clients}
    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        futures = {cid: pool.submit(_post, uri, tok, timeout) for cid, (uri, tok) in jobs.items()}
        return {cid: future.result() for cid, future in futures.items()}
