"""Issuing, checking and revoking tokens.

Access tokens are ES256 JWTs (RFC 9068) whose ``jti`` has a row in
``oauth_tokens``; refresh tokens are random strings stored as SHA-256. Every
token of one authorization shares a ``Grant``; revoking the grant kills the
whole family (code reuse, refresh replay, logout).

A client_credentials access token has no row (nothing to write per grant, as in
Keycloak and oidc-provider): its signed ``jti`` starts with ``c.``, and what a
row would say is read back from its claims; revoking one puts its jti in
``oauth_revoked_jtis`` until its exp (``idp purge`` drops the expired ones).
"""

from __future__ import annotations

import functools
import secrets
import time
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import bindparam, cast, delete, exists, insert, select, update
from sqlalchemy.orm import joinedload

from idp.extensions import db
from idp.models import (
    Client,
    ClientTenant,
    Grant,
    Membership,
    RevokedJti,
    Tenant,
    Token,
    User,
)
from idp.models.oauth import digest
from idp.oauth.claims import user_claims
from idp.services import dbapi, state_cache
from idp.services.locale import localised_name

ACCESS_TOKEN_TYP = "at+jwt"
# The jti of an access token that has no row (client_credentials); signed, so unforgeable.
STATELESS_JTI_PREFIX = "c."


@dataclass
class TokenSettings:
    issuer: str
    access_ttl: int
    refresh_idle_ttl: int
    refresh_absolute_ttl: int


@dataclass
class OrgContext:
    tenant_id: int
    slug: str
    role: str
    name: str = ""


def org_context(user_id: int | None, tenant_id: int | None,
                locales: str | None = None) -> OrgContext | None:
    """The person's membership in the tenant; ``org_name`` in the first of ``locales`` (the
    grant's ``claims_locales``) the tenant has a name for, else its name."""
    if user_id is None or tenant_id is None:
        return None
    row = db.session.execute(
        select(Tenant.slug, Membership.role, Tenant.name, Tenant.settings)
        .join(Membership, Membership.tenant_id == Tenant.id)
        .where(Tenant.id == tenant_id, Membership.user_id == user_id)
    ).first()
    return OrgContext(tenant_id, row.slug, row.role,
                      localised_name(row.settings, row.name, locales)) if row else None


def org_claims(org: OrgContext | None) -> dict:
    if org is None:
        return {}
    return {"org_id": str(org.tenant_id), "org_slug": org.slug, "org_name": org.name,
            "org_role": org.role}


# ``issue(org=...)`` default: look the user's membership up.
LOOK_UP = object()


def issue(keystore, settings: TokenSettings, *, client: Client, scope: str,
          user: User | Subject | None = None, grant: Grant | GrantFacts | None = None,
          include_refresh_token: bool = False, org=LOOK_UP) -> tuple[dict, Token]:
    """Build the token response and its (unsaved) row. The caller adds and commits, except
    for a client's own token (no user, no grant), whose row is never stored (``stored``).
    ``org``: the grant's org context when the caller already read it."""
    response, values = issue_values(keystore, settings, client=client, scope=scope, user=user,
                                    grant=grant, include_refresh_token=include_refresh_token,
                                    org=org)
    return response, Token(**values)


def issue_values(keystore, settings: TokenSettings, *, client: Client, scope: str,
                 user: User | Subject | None = None, grant: Grant | GrantFacts | None = None,
                 include_refresh_token: bool = False, org=LOOK_UP) -> tuple[dict, dict]:
    """``issue`` with the row as column values (an INSERT's parameters)."""
    claims, values, refresh_token = _unsigned(settings, client=client, scope=scope, user=user,
                                              grant=grant,
                                              include_refresh_token=include_refresh_token,
                                              org=org)
    return _signed(keystore.signer("ES256"), claims, settings, scope, refresh_token), values


def _unsigned(settings: TokenSettings, *, client: Client, scope: str,
              user: User | Subject | None, grant: Grant | GrantFacts | None,
              include_refresh_token: bool, org) -> tuple[dict, dict, str | None]:
    """An access token's claims, its row's values and the refresh token (or None): all of
    ``issue_values`` but the signature."""
    now = int(time.time())
    stateless = user is None and grant is None
    jti = (STATELESS_JTI_PREFIX if stateless else "") + secrets.token_urlsafe(16)
    claims = _access_claims(settings, client.client_id, user.sub if user else client.client_id,
                            jti, now, scope)
    tenant_id = grant.tenant_id if grant else client.tenant_id
    if grant is not None:
        claims["auth_time"] = grant.auth_time
        if grant.acr:
            claims["acr"] = grant.acr
        if grant.amr:
            claims["amr"] = grant.amr
        if grant.sid:
            claims["sid"] = grant.sid
        if org is LOOK_UP:
            org = org_context(grant.user_id, grant.tenant_id, grant.claims_locales)
        claims.update(org_claims(org))
    values = {"jti": jti, "client_id": client.client_id, "user_id": user.id if user else None,
              "tenant_id": tenant_id, "grant_id": grant.id if grant else None, "scope": scope,
              "issued_at": now, "access_expires_at": now + settings.access_ttl,
              "refresh_hash": None, "refresh_expires_at": None}
    refresh_token = None
    if include_refresh_token and user is not None and grant is not None:
        refresh_token = secrets.token_urlsafe(32)
        values["refresh_hash"] = digest(refresh_token)
        values["refresh_expires_at"] = min(now + settings.refresh_idle_ttl,
                                           grant.created_at + settings.refresh_absolute_ttl)
    return claims, values, refresh_token


def _signed(sign: Callable[[dict, str], str], claims: dict, settings: TokenSettings, scope: str,
            refresh_token: str | None) -> dict:
    """The token response: the access token signed by ``sign`` (a key store's ``signer``)."""
    response = _token_response(sign(claims, ACCESS_TOKEN_TYP), settings, scope)
    if refresh_token is not None:
        response["refresh_token"] = refresh_token
    return response


def _access_claims(settings: TokenSettings, client_id: str, sub: str, jti: str, now: int,
                   scope: str) -> dict:
    return {"iss": settings.issuer, "sub": sub, "aud": client_id, "client_id": client_id,
            "iat": now, "exp": now + settings.access_ttl, "jti": jti, "scope": scope}


def _token_response(access_token: str, settings: TokenSettings, scope: str) -> dict:
    return {"access_token": access_token, "token_type": "Bearer",
            "expires_in": settings.access_ttl, "scope": scope}


def issue_client_token(keystore, settings: TokenSettings, *, client: Client, scope: str) -> dict:
    """A client's own token (client_credentials): the same answer as ``issue`` gives for no
    user and no grant, without building the row that is never stored."""
    jti = STATELESS_JTI_PREFIX + secrets.token_urlsafe(16)
    claims = _access_claims(settings, client.client_id, client.client_id, jti, int(time.time()),
                            scope)
    return _token_response(keystore.sign(claims, "ES256", ACCESS_TOKEN_TYP), settings, scope)


def stored(row: Token) -> bool:
    """Whether this access token's row belongs in the database."""
    return not row.jti.startswith(STATELESS_JTI_PREFIX)


def access_row(claims: dict) -> Token | None:
    """The row of a verified access token: stored, or rebuilt from a stateless token's
    claims (never added to the session), revoked if its jti is on the deny-list."""
    jti = claims.get("jti")
    if not isinstance(jti, str):
        return None
    if not jti.startswith(STATELESS_JTI_PREFIX):
        return db.session.scalar(select(Token).where(Token.jti == jti))
    if not isinstance(claims.get("client_id"), str) or claims.get("sub") != claims["client_id"]:
        return None
    revoked = db.session.scalar(select(RevokedJti.expires_at).where(RevokedJti.jti == jti))
    return Token(jti=jti, client_id=claims["client_id"], user_id=None, grant_id=None,
                 scope=str(claims.get("scope", "")), issued_at=claims.get("iat"),
                 access_expires_at=claims["exp"],
                 revoked_at=int(time.time()) if revoked is not None else None)


def revoke_access_row(row: Token) -> None:
    """Revoke one access token (the caller commits)."""
    if stored(row):
        row.revoked_at = row.revoked_at or int(time.time())
    elif row.revoked_at is None and db.session.get(RevokedJti, row.jti) is None:
        db.session.add(RevokedJti(jti=row.jti, expires_at=row.access_expires_at))
        row.revoked_at = int(time.time())


def purge_revoked_jtis(now: int | None = None) -> int:
    """Drop the deny-list entries of tokens that have expired anyway."""
    now = int(time.time()) if now is None else now
    return db.session.execute(delete(RevokedJti).where(RevokedJti.expires_at <= now)).rowcount


def revoke_grant(grant_id: int) -> None:
    """Kill a whole family: the grant and every token issued under it."""
    now = int(time.time())
    db.session.execute(update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None))
                       .values(revoked_at=now))
    db.session.execute(update(Token).where(Token.grant_id == grant_id, Token.revoked_at.is_(None))
                       .values(revoked_at=now))


def find_refresh_token(refresh_token: str) -> Token | None:
    if not isinstance(refresh_token, str) or len(refresh_token) > 256:
        return None
    # The grant is always needed next (liveness, claims): load it in the same query.
    return db.session.scalar(select(Token).options(joinedload(Token.grant))
                             .where(Token.refresh_hash == digest(refresh_token)))


@dataclass(frozen=True)
class GrantFacts:
    """What issuing a token needs of its grant (the columns ``issue`` reads)."""

    id: int
    user_id: int
    tenant_id: int | None
    scope: str
    auth_time: int
    acr: str | None
    amr: list
    sid: str | None
    created_at: int
    revoked_at: int | None
    claims_locales: str | None = None


@dataclass(frozen=True)
class RefreshState:
    """A refresh token, its grant, its user and the user's membership, in one SELECT."""

    id: int
    client_id: str
    user_id: int | None
    tenant_id: int | None
    grant_id: int | None
    scope: str
    issued_at: int
    refresh_expires_at: int | None
    rotated_at: int | None
    revoked_at: int | None
    grant: GrantFacts | None
    user_sub: str | None
    user_active: bool
    org: OrgContext | None  # the grant's user's membership in the grant's tenant, if any
    tenant_active: bool = True
    client_serves: bool = True  # the client still serves the token's tenant

    def requestable_scope(self) -> str:
        """What a refresh may ask for: the grant's scope (``Token.get_scope``)."""
        return self.grant.scope if self.grant_id is not None and self.grant else self.scope


_GRANT_COLUMNS = ("id", "user_id", "tenant_id", "scope", "auth_time", "acr", "amr", "sid",
                  "created_at", "revoked_at", "claims_locales")


def _joined(columns, member_of):
    """A token's row outer-joined to its grant, its user, and the membership of
    ``member_of``'s (Token's or Grant's) user_id in its tenant_id, with that tenant."""
    return (columns.select_from(Token)
            .outerjoin(Grant, Grant.id == Token.grant_id)
            .outerjoin(User, User.id == Token.user_id)
            .outerjoin(Membership, (Membership.user_id == member_of.user_id)
                       & (Membership.tenant_id == member_of.tenant_id))
            .outerjoin(Tenant, Tenant.id == Membership.tenant_id))


@functools.cache
def _refresh_select():
    return _joined(
            select(Token.id, Token.client_id, Token.user_id, Token.tenant_id, Token.grant_id,
                   Token.scope, Token.issued_at, Token.refresh_expires_at, Token.rotated_at,
                   Token.revoked_at,
                   *(getattr(Grant, c).label(f"g_{c}") for c in _GRANT_COLUMNS),
                   User.sub.label("user_sub"), User.active.label("user_active"),
                   Tenant.slug, Membership.role, Tenant.name,
                   Tenant.settings.label("tenant_settings"),
                   Tenant.active.label("tenant_active"), *_serving_columns()),
            Grant).outerjoin(Client, Client.client_id == Token.client_id) \
        .where(Token.refresh_hash == bindparam("refresh_hash"))


def _serving_columns() -> tuple:
    """Whether the token's client still serves its tenant (``clients.serves``): the
    client's own tenant, whether it lists any, whether it lists this one (with Client
    outer-joined on the token's client_id)."""
    return (Client.tenant_id.label("client_tenant_id"),
            exists().where(ClientTenant.client_id == Client.id).label("client_listed"),
            exists().where(ClientTenant.client_id == Client.id,
                           ClientTenant.tenant_id == Token.tenant_id)
            .label("client_lists_tenant"))


def refresh_state(refresh_token: str,
                  connection: dbapi.Connection | None = None) -> RefreshState | None:
    """The refresh token with this value, by its hash (unique index), or None. Read in the
    session's transaction, or on ``connection`` (the machine path: one autocommit read)."""
    if not _plausible_refresh_token(refresh_token):
        return None
    params = {"refresh_hash": digest(refresh_token)}
    if connection is None:
        return _refresh_state_of(db.session.connection().execute(_refresh_select(),
                                                                 params).first())
    found = _REFRESH.first(connection, params)
    return _refresh_state_of(_refresh_row()(*found) if found is not None else None)


def start_refresh_state(refresh_token: str,
                        connection: dbapi.Connection) -> Callable[[], RefreshState | None]:
    """``refresh_state`` on ``connection`` in two halves: on PostgreSQL the read is sent now
    and the function returned waits for it, so the caller works (authenticates the client)
    while the server reads. The function must be called, whatever happens meanwhile: the
    connection runs nothing else until it is. SQLite: the whole read, when called."""
    if connection.dialect.name != "postgresql" or not _plausible_refresh_token(refresh_token):
        return lambda: refresh_state(refresh_token, connection)
    sent = _REFRESH.send(connection, {"refresh_hash": digest(refresh_token)})

    def finish() -> RefreshState | None:
        found = sent.rows()
        return _refresh_state_of(_refresh_row()(*found[0]) if found else None)

    return finish


def _plausible_refresh_token(refresh_token: str) -> bool:
    return isinstance(refresh_token, str) and len(refresh_token) <= 256


def _refresh_state_of(row) -> RefreshState | None:
    if row is None:
        return None
    grant = (GrantFacts(**{c: getattr(row, f"g_{c}") for c in _GRANT_COLUMNS})
             if row.g_id is not None else None)
    org = (OrgContext(grant.tenant_id, row.slug, row.role,
                      localised_name(row.tenant_settings, row.name, grant.claims_locales))
           if grant is not None and grant.tenant_id is not None and row.role is not None
           and row.slug is not None else None)
    return RefreshState(row.id, row.client_id, row.user_id, row.tenant_id, row.grant_id,
                        row.scope, row.issued_at, row.refresh_expires_at, row.rotated_at,
                        row.revoked_at, grant, row.user_sub, bool(row.user_active), org,
                        row.tenant_active is not False,
                        _client_serves(row.tenant_id, row.client_tenant_id, row.client_listed,
                                       row.client_lists_tenant))


_REFRESH = dbapi.Statement(_refresh_select)


@functools.cache
def _refresh_row():
    """A named tuple of ``_refresh_select``'s columns, so a DBAPI row reads as a Core one."""
    return namedtuple("RefreshRow", _refresh_select().selected_columns.keys())


def _client_serves(tenant_id: int | None, client_tenant_id: int | None, listed: bool | None,
                   lists_tenant: bool | None) -> bool:
    """``clients.serves`` from ``_serving_columns`` (no tenant: nothing to serve; a client
    gone: no)."""
    if tenant_id is None:
        return True
    if client_tenant_id is not None:
        return client_tenant_id == tenant_id
    return bool(lists_tenant) or not listed


def refresh_grant_valid(state: RefreshState) -> bool:
    """Whether this refresh token may still be exchanged: the one place that says so (the
    token endpoint's both paths and introspection ask it). The token is neither revoked
    nor rotated nor expired, its grant is alive, its user still active, and, bound to a
    tenant, the user still a member of that tenant, the tenant active and the client still
    serving it (a removed membership, a disabled tenant, a client no longer shared with
    it: invalid_grant)."""
    now = int(time.time())
    grant_alive = state.grant_id is None or (state.grant is not None
                                             and state.grant.revoked_at is None)
    tenant_id = state.grant.tenant_id if state.grant is not None else state.tenant_id
    bound_ok = state.user_id is None or tenant_id is None or (
        state.org is not None and state.tenant_active)
    return (state.revoked_at is None and state.rotated_at is None and grant_alive
            and state.refresh_expires_at is not None and state.refresh_expires_at > now
            and (state.user_id is None or state.user_active) and bound_ok
            and state.client_serves)


def rotate_refresh_token(keystore, settings: TokenSettings, state: RefreshState, client: Client,
                         scope: str, connection: dbapi.Connection,
                         render: Callable[[dict], Any]) -> Any:
    """The refresh grant's writes, for a token ``refresh_grant_valid`` accepted, on
    ``connection``: claim the old token (a conditional UPDATE: of two concurrent uses one
    wins, and a token revoked since it was read is not claimed) and store its successor,
    committed. Returns ``render`` of the token response, or None when the claim took
    nothing (another request rotated or revoked it first): nothing was written.

    PostgreSQL: the claim and the INSERT are one statement in autocommit (a data-modifying
    CTE; its rowcount says whether the claim won), one round trip and one commit. It is
    sent first, and the answer is signed and rendered while the server executes and
    flushes it: the signing key is taken before the send, so only arithmetic and JSON run
    meanwhile, and the answer is returned only once the commit is known. SQLite: the
    successor signed first, then both writes in one BEGIN IMMEDIATE transaction."""
    if state.grant is None or state.user_id is None or state.user_sub is None:
        return None
    claims, values, refresh_token = _unsigned(settings, client=client, scope=scope,
                                              user=Subject(state.user_id, state.user_sub),
                                              grant=state.grant, include_refresh_token=True,
                                              org=state.org)
    sign = keystore.signer("ES256")
    claim = {"old_id": state.id, "now": int(time.time())}
    if connection.dialect.name == "postgresql":
        pending = _CLAIM_AND_STORE.send(connection, {**claim, **values})
        try:
            response = _signed(sign, claims, settings, scope, refresh_token)
            answer = render(response)
        finally:
            won = pending.rowcount() == 1  # read in any case: the connection is free again
        return answer if won else None
    response = _signed(sign, claims, settings, scope, refresh_token)
    with connection.transaction():
        if _rowcount(_CLAIM, connection, claim) != 1:
            return None  # nothing written: the COMMIT ends an empty transaction
        _rowcount(_STORE, connection, values)
    return render(response)


def _rowcount(statement: dbapi.Statement, connection: dbapi.Connection, params: dict) -> int:
    cursor = statement.execute(connection, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


# The columns of a token row ``issue_values`` fills (the INSERT of a successor).
_STORED_COLUMNS = ("jti", "client_id", "user_id", "tenant_id", "grant_id", "scope", "issued_at",
                   "access_expires_at", "refresh_hash", "refresh_expires_at")


@functools.cache
def _rotation_statements():
    """The UPDATE that claims a refresh token, the INSERT of its successor, and both in one
    statement (a data-modifying CTE, PostgreSQL's), built once."""
    table = Token.__table__
    claim = (update(table).where(table.c.id == bindparam("old_id"), table.c.rotated_at.is_(None),
                                 table.c.revoked_at.is_(None))
             .values(rotated_at=bindparam("now")))
    store = insert(table).values({c: bindparam(c) for c in _STORED_COLUMNS})
    claimed = claim.returning(table.c.id).cte("claimed")
    successor = select(*(cast(bindparam(c, type_=table.c[c].type), table.c[c].type)
                         for c in _STORED_COLUMNS)).select_from(claimed)
    return claim, store, insert(table).from_select(_STORED_COLUMNS, successor)


_CLAIM = dbapi.Statement(lambda: _rotation_statements()[0])
_STORE = dbapi.Statement(lambda: _rotation_statements()[1])
_CLAIM_AND_STORE = dbapi.Statement(lambda: _rotation_statements()[2])


def decode_access_token(keystore, issuer: str, access_token: str) -> dict | None:
    """Verify signature, type, issuer and expiry of one of our access tokens."""
    if not isinstance(access_token, str) or len(access_token) > 8192 or access_token.count(".") != 2:
        return None
    verified = keystore.verify_es256(access_token)  # the parsed key; None: joserfc decides
    if verified is None:
        try:
            token = jwt.decode(access_token, keystore.verification_keys(), algorithms=["ES256"])
        except (JoseError, ValueError, TypeError):
            return None
        verified = token.header, token.claims
    header, claims = verified
    if header.get("typ") != ACCESS_TOKEN_TYP:
        return None
    now = int(time.time())
    if claims.get("iss") != issuer or not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        return None
    return claims


@dataclass(frozen=True)
class AccessState:
    """The stored side of a verified access token: what introspection and userinfo need,
    read in one indexed statement (``access_state``)."""

    jti: str
    client_id: str
    user_id: int | None
    scope: str
    issued_at: int | None
    expires_at: int
    active: bool  # not revoked, its grant alive, its user active
    sub: str | None = None
    org: OrgContext | None = None
    user_columns: dict | None = None  # the user's claim columns, for userinfo
    userinfo_request: dict | None = None


_USER_COLUMNS = ("sub", "email", "email_verified", "given_name", "family_name", "locale",
                 "updated_at", "phone_number", "phone_number_verified")


@dataclass(frozen=True)
class Subject:
    """A user's columns read together with a token: what ``issue`` and ``user_claims`` read
    of a user, never a row to save."""

    id: int | None
    sub: str
    email: str | None = None
    email_verified: bool = False
    given_name: str | None = None
    family_name: str | None = None
    locale: str | None = None
    updated_at: int | None = None
    phone_number: str | None = None
    phone_number_verified: bool = False

    name = property(User.name.fget)  # the model's own rule


@functools.cache
def _revoked_select():
    return select(RevokedJti.expires_at).where(RevokedJti.jti == bindparam("jti"))


@functools.cache
def _access_select():
    """Built once: composing this statement costs more than running it."""
    return _joined(
            select(Token.client_id, Token.user_id, Token.tenant_id, Token.grant_id, Token.scope,
                   Token.issued_at, Token.access_expires_at, Token.revoked_at,
                   Grant.id.label("grant_found"), Grant.revoked_at.label("grant_revoked_at"),
                   Grant.claims.label("grant_claims"), User.active.label("user_active"),
                   *(getattr(User, c) for c in _USER_COLUMNS), Tenant.slug, Membership.role,
                   Tenant.name, Tenant.active.label("tenant_active"), *_serving_columns()),
            Token).outerjoin(Client, Client.client_id == Token.client_id) \
        .where(Token.jti == bindparam("jti"))


_ACCESS = dbapi.Statement(_access_select)
_REVOKED = dbapi.Statement(_revoked_select)


def _first(statement: dbapi.Statement, params: dict, engine,
           keep_missing: bool = False) -> tuple | None:
    """One row: on this thread's DBAPI connection to ``engine`` (the lean paths: one
    statement, no pool checkout, autocommit), or from its state cache on PostgreSQL
    (idp/services/state_cache.py; ``keep_missing``: "no row" is kept too), else in the
    session's transaction (the views). The same values either way
    (tests/http/test_dbapi.py)."""
    if engine is not None:
        cache = state_cache.of(engine)
        if cache is not None:
            return cache.first(statement, params, keep_missing)
        return dbapi.fetch_first(statement, engine, params)
    row = db.session.connection().execute(statement.core(), params).first()
    return tuple(row) if row is not None else None


def access_state(claims: dict, engine=None) -> AccessState | None:
    """The state of a verified access token, or None when it has no row.

    A user's token: one SELECT of its row by jti (unique index), outer-joined to its grant,
    its user, the user's membership in its tenant and its client; it is inactive once the
    tenant is disabled or the client no longer serves it, as its refresh token is. A
    client's own token (``c.`` jti): what a row would say comes from its claims, plus one
    primary-key lookup in the deny-list. ``engine``: read on this thread's DBAPI
    connection to it, or kept by its state cache until a write changes it (see
    ``_first``); without it, read in the session."""
    jti = claims.get("jti")
    if not isinstance(jti, str):
        return None
    if jti.startswith(STATELESS_JTI_PREFIX):
        client_id = claims.get("client_id")
        if not isinstance(client_id, str) or claims.get("sub") != client_id:
            return None
        revoked = _first(_REVOKED, {"jti": jti}, engine, keep_missing=True)
        return AccessState(jti, client_id, None, str(claims.get("scope", "")), claims.get("iat"),
                           claims["exp"], active=revoked is None)
    row = _first(_ACCESS, {"jti": jti}, engine)
    if row is None:
        return None
    # The columns of _access_select, in its order.
    (client_id, user_id, tenant_id, grant_id, scope, issued_at, expires_at, revoked_at,
     grant_found, grant_revoked_at, grant_claims, user_active, *rest) = row
    user = rest[:len(_USER_COLUMNS)]
    slug, role, name, tenant_active, *serving = rest[len(_USER_COLUMNS):]
    sub = user[0]
    alive = grant_id is None or (grant_found is not None and grant_revoked_at is None)
    # The refresh grant's rules for a user's token bound to a tenant: the tenant still
    # active, the client still serving it (refresh_grant_valid).
    user_ok = user_id is None or (bool(user_active) and (tenant_id is None or (
        tenant_active is not False and _client_serves(tenant_id, *serving))))
    columns = (dict(zip(_USER_COLUMNS, user, strict=True))
               if user_id is not None and sub is not None else None)
    org = (OrgContext(tenant_id, slug, role, name)
           if user_id is not None and tenant_id is not None and role is not None
           and slug is not None else None)
    requested = (grant_claims or {}).get("userinfo") if grant_id else None
    return AccessState(jti, client_id, user_id, scope, issued_at, expires_at,
                       active=revoked_at is None and alive and user_ok,
                       sub=sub, org=org, user_columns=columns, userinfo_request=requested)


def active_access_token(keystore, issuer: str, access_token: str,
                        engine=None) -> tuple[dict, AccessState] | None:
    """The claims and state of a valid, unrevoked access token, else None."""
    claims = decode_access_token(keystore, issuer, access_token)
    if claims is None:
        return None
    state = access_state(claims, engine)
    if state is None or not state.active:
        return None
    return claims, state


def revoke_user_tokens(user_id: int, client_id: str | None = None) -> None:
    """Every grant of a user dies (password reset, account disabled), or only those of one
    client (the person revoked that client's consent)."""
    grants = select(Grant.id).where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
    rows = update(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None))
    if client_id is not None:
        grants = grants.where(Grant.client_id == client_id)
        rows = rows.where(Token.client_id == client_id)
    for grant_id in db.session.scalars(grants):
        revoke_grant(grant_id)
    db.session.execute(rows.values(revoked_at=int(time.time())))


# ------------------------------------------------------- userinfo, revocation, introspection


def userinfo(claims: dict, state: AccessState) -> dict | None:
    """The userinfo body of a valid access token (``active_access_token``'s answer), or None
    when the token does not allow userinfo (no user, or no ``openid`` scope)."""
    scope = claims.get("scope", "")
    if state.user_columns is None or "openid" not in scope.split():
        return None
    body = user_claims(Subject(None, **state.user_columns), scope, state.userinfo_request)
    body.update({k: claims[k] for k in ("org_id", "org_slug", "org_name", "org_role")
                 if k in claims})
    return body


def find_token(keystore, issuer: str, value: str, hint: str | None) -> tuple[Token | None,
                                                                              str | None]:
    """A token row by refresh value or by access-token jti, and its kind, owned by nobody in
    particular.

    The hint only orders the search: a token not found as the hinted type is looked
    up as the other (RFC 7009 2.1, RFC 7662 2.1)."""
    if not isinstance(value, str) or not value or len(value) > 8192:
        return None, None

    def as_refresh():
        row = find_refresh_token(value)
        return (row, "refresh_token") if row is not None else None

    def as_access():
        claims = decode_access_token(keystore, issuer, value)
        if claims:
            row = access_row(claims)  # stored, or rebuilt for a stateless client token
            if row is not None:
                return row, "access_token"
        return None

    order = (as_access, as_refresh) if hint == "access_token" else (as_refresh, as_access)
    for lookup in order:
        found = lookup()
        if found is not None:
            return found
    return None, None


def revoke_for_client(keystore, issuer: str, client_id: str, value: str,
                      hint: str | None) -> None:
    """RFC 7009: revoke the client's own token; a refresh token ends its family. An unknown
    token, or another client's, changes nothing. Commits (the revocation endpoint's
    transaction)."""
    row, kind = find_token(keystore, issuer, value, hint)
    if row is None or row.client_id != client_id:
        return
    if kind == "refresh_token" and row.grant_id is not None:
        revoke_grant(row.grant_id)
    if kind == "access_token":
        revoke_access_row(row)  # a stateless token goes on the deny-list until its exp
    else:
        row.revoked_at = row.revoked_at or int(time.time())
    db.session.commit()


def introspect_for_client(keystore, issuer: str, client_id: str, value: str,
                          hint: str | None) -> dict:
    """RFC 7662: the introspection body; a token is visible only to the client it was issued
    to. Reads only. The hint only orders the search (RFC 7662 2.1)."""
    inactive = {"active": False}
    if not isinstance(value, str) or not value or len(value) > 8192:
        return inactive
    lookups = ((introspect_access_token, _introspect_refresh_token) if hint == "access_token"
               else (_introspect_refresh_token, introspect_access_token))
    for lookup in lookups:
        body = lookup(keystore, issuer, client_id, value)
        if body is not None:
            return body
    return inactive


def introspect_access_token(keystore, issuer: str, client_id: str, value: str,
                            engine=None) -> dict | None:
    """The introspection body of one of our access tokens; None when ``value`` is none."""
    claims = decode_access_token(keystore, issuer, value)
    state = access_state(claims, engine) if claims is not None else None
    if state is None:
        return None
    if state.client_id != client_id or not state.active:
        return {"active": False}
    body = {"active": True, "client_id": state.client_id, "scope": state.scope,
            "token_type": "Bearer", "exp": state.expires_at, "iat": state.issued_at,
            "iss": issuer, "jti": state.jti}
    if state.user_id is not None:
        body["sub"] = state.sub
    body.update(org_claims(state.org))
    return body


def _introspect_refresh_token(keystore, issuer: str, client_id: str, value: str) -> dict | None:
    state = refresh_state(value)
    if state is None:
        return None
    if state.client_id != client_id or not refresh_grant_valid(state):
        return {"active": False}
    body = {"active": True, "client_id": state.client_id, "scope": state.scope,
            "token_type": "refresh_token", "exp": state.refresh_expires_at,
            "iat": state.issued_at, "iss": issuer}
    if state.user_id is not None:
        body["sub"] = state.user_sub
    body.update(org_claims(org_context(state.user_id, state.tenant_id)))
    return body
