"""The lean machine paths (idp/oauth/lean.py): the hot requests answered before Flask give
the very answer the views give, and everything else still reaches the views."""

from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.models import Client
from idp.models.oauth import digest
from idp.oauth import lean as lean_module
from idp.oauth import server as server_module
from tests.http.helpers import decode, introspect
from tests.support import basic_auth

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


@pytest.fixture
def lean(app):
    """The middleware, with a count of the requests it handed to Flask."""
    from idp.observability import readiness_problems

    if not readiness_problems(app):
        app.extensions["idp_ready"].set()  # as the first request through Flask would
    middleware = app.extensions["idp_lean"]
    inner = middleware.wsgi_app
    passed = []

    def counting(environ, start_response):
        passed.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    middleware.wsgi_app = counting
    middleware.passed = passed
    yield middleware
    middleware.wsgi_app = inner
    middleware.enabled = True


def _both(lean, send):
    """The same request answered by the lean path, then by Flask alone."""
    lean.passed.clear()
    first = send()
    assert lean.passed == [], "the lean path did not answer"
    lean.enabled = False
    try:
        second = send()
    finally:
        lean.enabled = True
    assert lean.passed, "Flask did not answer"
    return first, second


def _same_answer(lean_answer, flask_answer) -> dict:
    """Same status, same headers in the same order (the CSP nonce and the length aside),
    same JSON shape and formatting; returns the lean body."""
    assert lean_answer.status == flask_answer.status == "200 OK"

    def headers(response):
        return [(k, "nonce" if k == "Content-Security-Policy" else v)
                for k, v in response.headers.items() if k != "Content-Length"]

    assert headers(lean_answer) == headers(flask_answer)
    ours, theirs = lean_answer.get_json(), flask_answer.get_json()
    assert sorted(ours) == sorted(theirs)
    assert lean_answer.data.endswith(b"\n") == flask_answer.data.endswith(b"\n")
    assert (b'": ' in lean_answer.data) == (b'": ' in flask_answer.data)
    return ours


def _cc(client, rp, **form):
    return client.post("/oauth/token", data={"grant_type": "client_credentials", **form},
                       headers=basic_auth(rp.client_id, rp.client_secret))


def test_client_credentials_with_basic(app, client, rp, lean):
    ours, theirs = _both(lean, lambda: _cc(client, rp, scope="email"))
    body = _same_answer(ours, theirs)
    assert {k: v for k, v in body.items() if k != "access_token"} == {
        "token_type": "Bearer", "expires_in": app.config["IDP_ACCESS_TOKEN_TTL"],
        "scope": "email"}
    mine, flasks = (decode(client, r.get_json()["access_token"]) for r in (ours, theirs))
    assert mine.header == flasks.header
    assert sorted(mine.claims) == sorted(flasks.claims)
    assert mine.claims["jti"].startswith("c.") and mine.claims["sub"] == rp.client_id


def test_client_credentials_with_the_secret_in_the_body(client, rp, lean):
    def send():
        return client.post("/oauth/token", data={
            "client_id": rp.client_id, "client_secret": rp.client_secret,
            "grant_type": "client_credentials"})

    _same_answer(*_both(lean, send))


@pytest.mark.parametrize("case", [
    "wrong-secret", "unknown-client", "two-methods", "repeated", "query", "unknown-param",
    "bad-scope", "not-allowed", "json-body", "assertion"])
def test_anything_else_goes_to_the_views(client, factory, rp, lean, case):
    """Each of these is answered by Flask, body untouched (its answer is tested elsewhere)."""
    auth = basic_auth(rp.client_id, rp.client_secret)
    form: object = {"grant_type": "client_credentials"}
    path, kwargs = "/oauth/token", {}
    if case == "wrong-secret":
        auth = basic_auth(rp.client_id, "wrong")
    elif case == "unknown-client":
        auth = basic_auth("nobody", "x")
    elif case == "two-methods":
        form = {**form, "client_id": rp.client_id, "client_secret": rp.client_secret}
    elif case == "repeated":
        form = MultiDict([("grant_type", "client_credentials"), ("scope", "email"),
                          ("scope", "email")])
    elif case == "query":
        path = "/oauth/token?scope=email"
    elif case == "unknown-param":
        form = {**form, "resource": "https://api.example.com"}
    elif case == "bad-scope":
        form = {**form, "scope": "email admin"}
    elif case == "not-allowed":
        other = factory.client(grant_types=["authorization_code"])
        auth = basic_auth(other.client_id, other.client_secret)
    elif case == "json-body":
        kwargs = {"data": json.dumps(form), "content_type": "application/json"}
    elif case == "assertion":
        form = {**form, "client_assertion_type": "x", "client_assertion": "a.b.c",
                "client_id": rp.client_id}
        auth = {}
    response = client.post(path, headers=auth, **(kwargs or {"data": form}))
    assert lean.passed == ["/oauth/token"]
    assert response.headers["Cache-Control"] == "no-store"
    if case == "unknown-param":  # the views ignore a resource indicator today
        assert response.status_code == 200
    else:
        assert response.status_code in (400, 401) and response.get_json()["error"]


def test_a_client_not_ready_yet_is_left_to_the_app(app, client, rp, lean):
    ready = app.extensions["idp_ready"]
    was = ready.is_set()
    ready.clear()
    try:
        response = _cc(client, rp)
    finally:
        if was:
            ready.set()
    assert lean.passed == ["/oauth/token"] and response.status_code == 200


def test_a_new_secret_takes_effect_within_the_cache_ttl(app, client, rp, lean, monkeypatch):
    """The client record is cached per process for IDP_CLIENT_CACHE_TTL seconds (a bounded
    TTL, no per-request version check): after that, the old secret is refused everywhere."""
    monkeypatch.setitem(app.config, "IDP_CLIENT_CACHE_TTL", 5)
    clock = [1000.0]
    monkeypatch.setattr(server_module.time, "monotonic", lambda: clock[0])
    app.extensions["idp_oauth"].__dict__.pop("_client_cache", None)
    assert _cc(client, rp).status_code == 200
    with app.app_context():
        db.session.execute(db.update(Client).where(Client.client_id == rp.client_id)
                           .values(secret_hash=digest("the-new-secret")))
        db.session.commit()
    clock[0] += 5.1
    lean.passed.clear()
    old = _cc(client, rp)
    assert old.status_code == 401 and old.get_json()["error"] == "invalid_client"
    assert lean.passed == ["/oauth/token"]  # refused by the view, with its challenge
    assert old.headers["WWW-Authenticate"].startswith("Basic")
    new = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                      headers=basic_auth(rp.client_id, "the-new-secret"))
    assert new.status_code == 200
    # A client removed from the grant stops getting tokens once the TTL has passed.
    with app.app_context():
        db.session.execute(db.update(Client).where(Client.client_id == rp.client_id)
                           .values(grant_types=["authorization_code"]))
        db.session.commit()
    clock[0] += 5.1
    refused = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                          headers=basic_auth(rp.client_id, "the-new-secret"))
    assert refused.status_code == 400 and refused.get_json()["error"] == "unauthorized_client"
    app.extensions["idp_oauth"].__dict__.pop("_client_cache", None)


def test_the_lean_path_counts_in_the_metrics(app, client, rp, lean):
    metrics = app.extensions["idp_metrics"]
    before = metrics.requests[("oauth.token", "POST", 200)]
    _cc(client, rp)
    assert lean.passed == []
    assert metrics.requests[("oauth.token", "POST", 200)] == before + 1


# --- introspection and userinfo -------------------------------------------------------


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
def test_introspection_of_a_user_token(client, driver, rp, lean, hint):
    token = driver.tokens(rp)["access_token"]
    extra = {"token_type_hint": hint} if hint else {}
    ours, theirs = _both(lean, lambda: introspect(client, rp, token, **extra))
    body = _same_answer(ours, theirs)
    assert body == theirs.get_json()  # every value too: nothing in it changes per request
    assert body["active"] is True and body["org_slug"] == "acme" and body["sub"]


def test_introspection_of_a_client_token(client, rp, lean):
    token = _cc(client, rp).get_json()["access_token"]
    ours, theirs = _both(lean, lambda: introspect(client, rp, token))
    assert _same_answer(ours, theirs) == theirs.get_json()


def test_userinfo(client, driver, rp, lean):
    token = driver.tokens(rp, scope="openid profile email")["access_token"]
    ours, theirs = _both(lean, lambda: client.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {token}"}))
    body = _same_answer(ours, theirs)
    assert body == theirs.get_json() and body["email"] == "alice@example.com"


def test_inactive_tokens_and_refusals_go_to_the_views(app, client, driver, factory, rp, lean):
    tokens = driver.tokens(rp)
    access = tokens["access_token"]
    other = factory.client()
    cases = [
        lambda: introspect(client, other, access),  # another client's token
        lambda: introspect(client, rp, tokens["refresh_token"]),  # not a JWT
        lambda: introspect(client, rp, access[:-4] + "AAAA"),  # bad signature
        lambda: client.post("/oauth/introspect", data={"token": access},
                            headers=basic_auth(rp.client_id, "wrong")),
        lambda: client.get("/oauth/userinfo", headers={"Authorization": "Bearer x.y.z"}),
        lambda: client.get("/oauth/userinfo", headers={"Authorization": f"Basic {access}"}),
        lambda: client.get("/oauth/userinfo?x=1", headers={"Authorization": f"Bearer {access}"}),
        lambda: client.post("/oauth/userinfo", data={"access_token": access}),
    ]
    for send in cases:
        lean.passed.clear()
        response = send()
        assert len(lean.passed) == 1, response.get_json()
    # Revoked by logout of the family: the views answer, inactive.
    from idp.services.tokens import revoke_grant

    with app.app_context():
        from idp.models import Token

        grant_id = db.session.query(Token.grant_id).filter(Token.grant_id.isnot(None)).first()[0]
        revoke_grant(grant_id)
        db.session.commit()
    lean.passed.clear()
    assert introspect(client, rp, access).get_json() == {"active": False}
    assert client.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {access}"}).status_code == 401
    assert len(lean.passed) == 2


def test_a_disabled_user_token_is_inactive(app, client, driver, rp, lean):
    token = driver.tokens(rp)["access_token"]
    assert introspect(client, rp, token).get_json()["active"] is True
    with app.app_context():
        from idp.models import User

        db.session.execute(db.update(User).values(active=False))
        db.session.commit()
    lean.passed.clear()
    assert introspect(client, rp, token).get_json() == {"active": False}
    assert client.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {token}"}).status_code == 401
    assert lean.passed == ["/oauth/introspect", "/oauth/userinfo"]  # the views said so


# --- the refresh grant ------------------------------------------------------------------


def _refresh(client, rp, token, **form):
    return client.post("/oauth/token", data={"grant_type": "refresh_token",
                                             "refresh_token": token, **form},
                       headers=basic_auth(rp.client_id, rp.client_secret))


def test_refresh_answers_as_the_view_does(client, driver, rp, lean):
    first = driver.tokens(rp)
    lean.passed.clear()
    ours = _refresh(client, rp, first["refresh_token"])
    assert lean.passed == []
    lean.enabled = False
    theirs = _refresh(client, rp, ours.get_json()["refresh_token"])
    lean.enabled = True
    body = _same_answer(ours, theirs)
    assert body["scope"] == first["scope"] and body["refresh_token"] != first["refresh_token"]
    mine, flasks = (decode(client, r.get_json()["access_token"]) for r in (ours, theirs))
    assert mine.header == flasks.header
    assert {k: v for k, v in mine.claims.items() if k not in ("jti", "iat", "exp")} == \
        {k: v for k, v in flasks.claims.items() if k not in ("jti", "iat", "exp")}
    # The lean path's token refreshes again, through either path.
    assert _refresh(client, rp, theirs.get_json()["refresh_token"]).status_code == 200


def test_refresh_with_a_narrower_scope_and_a_public_client(client, driver, factory, native,
                                                           rp, lean):
    tokens = driver.tokens(rp, scope="openid profile email offline_access")
    lean.passed.clear()
    narrower = _refresh(client, rp, tokens["refresh_token"], scope="openid email")
    assert narrower.status_code == 200 and narrower.get_json()["scope"] == "openid email"
    wider = _refresh(client, rp, narrower.get_json()["refresh_token"], scope="openid phone")
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_scope"
    assert lean.passed == ["/oauth/token"]
    public = driver.tokens(native)
    lean.passed.clear()
    response = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": public["refresh_token"],
        "client_id": native.client_id})
    assert response.status_code == 200 and lean.passed == []


def test_a_replayed_refresh_token_goes_to_the_view_and_kills_the_family(client, driver, rp,
                                                                       lean):
    first = driver.tokens(rp)
    second = _refresh(client, rp, first["refresh_token"]).get_json()
    lean.passed.clear()
    replay = _refresh(client, rp, first["refresh_token"])
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert lean.passed == ["/oauth/token"]
    assert _refresh(client, rp, second["refresh_token"]).get_json()["error"] == "invalid_grant"


def _after_the_lean_read(monkeypatch, lean, write):
    """Once the lean path has read a refresh token's state (PostgreSQL: the sent read
    answered), ``write(connection, state)`` on a connection of its own, committed: another
    request's write between the read and the claim. Once only: the view reads afresh."""
    from idp.services import tokens as service

    real = service.start_refresh_state

    def start(value, connection):
        finish = real(value, connection)

        def finished():
            state = finish()
            monkeypatch.setattr(service, "start_refresh_state", real)
            with lean.engine().begin() as other:
                write(other, state)
            return state

        return finished

    monkeypatch.setattr(service, "start_refresh_state", start)


def test_a_lost_race_is_the_views_replay(app, client, driver, rp, lean, monkeypatch):
    """Two uses of one token at once: the second's conditional UPDATE claims nothing; it
    writes nothing and the view answers it as a replay (the family dies)."""
    from idp.models import Token

    first = driver.tokens(rp)
    _after_the_lean_read(monkeypatch, lean, lambda other, state: other.execute(  # it wins
        db.update(Token).where(Token.id == state.id).values(rotated_at=1)))
    count = db.session.query(Token).count()
    db.session.rollback()
    lean.passed.clear()
    response = _refresh(client, rp, first["refresh_token"])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert lean.passed == ["/oauth/token"]
    db.session.rollback()
    assert db.session.query(Token).count() == count  # the loser stored no token
    assert db.session.query(Token).filter(Token.revoked_at.is_(None)).count() == 0


def test_refresh_of_a_disabled_user_or_another_clients_token(app, client, driver, factory,
                                                             rp, lean):
    tokens = driver.tokens(rp)
    other = factory.client()
    lean.passed.clear()
    assert _refresh(client, other, tokens["refresh_token"]).get_json()["error"] == \
        "invalid_grant"
    from idp.models import User

    with app.app_context():
        db.session.execute(db.update(User).values(active=False))
        db.session.commit()
    assert _refresh(client, rp, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert lean.passed == ["/oauth/token", "/oauth/token"]


# --- introspection and userinfo: no app context, one statement, nothing remembered ---------


@pytest.fixture
def quiet(app, monkeypatch):
    """What a lean request does besides answering: app contexts pushed and statements run
    through SQLAlchemy (the lean reads go to the DBAPI cursor, so none is expected)."""
    from flask import appcontext_pushed
    from sqlalchemy import event

    seen = {"contexts": 0, "statements": 0}

    def pushed(sender, **extra):
        seen["contexts"] += 1

    def statement(*args):
        seen["statements"] += 1

    # A cached client: with IDP_CLIENT_CACHE_TTL 0 (the tests' setting) every request reads
    # the client, in a context of its own.
    monkeypatch.setitem(app.config, "IDP_CLIENT_CACHE_TTL", 60)
    app.extensions["idp_oauth"].__dict__.pop("_client_cache", None)
    appcontext_pushed.connect(pushed, app)
    event.listen(db.engine, "before_cursor_execute", statement)
    yield seen
    event.remove(db.engine, "before_cursor_execute", statement)
    appcontext_pushed.disconnect(pushed, app)
    app.extensions["idp_oauth"].__dict__.pop("_client_cache", None)


def _userinfo(client, token):
    return client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"})


def test_the_lean_reads_push_no_context_and_run_no_orm(client, driver, rp, lean, quiet,
                                                       monkeypatch):
    """Introspection, userinfo and client_credentials on a client-cache hit: no app
    context, no statement through SQLAlchemy; the token's row is one DBAPI statement
    (read each time here: on PostgreSQL the state cache is emptied before each read)."""
    from idp.services import dbapi, state_cache

    cache = state_cache.of(db.engine)
    token = driver.tokens(rp)["access_token"]
    assert introspect(client, rp, token).status_code == 200  # warms the client cache
    executed = []
    real = dbapi.Statement._run
    monkeypatch.setattr(dbapi.Statement, "_run",
                        lambda self, *args: executed.append(1) or real(self, *args))
    quiet.update(contexts=0, statements=0)
    lean.passed.clear()
    for _ in range(3):
        for request in (lambda: introspect(client, rp, token).get_json()["active"],
                        lambda: _userinfo(client, token).get_json()["sub"]):
            if cache is not None:
                cache.flush()
            assert request()
        assert _cc(client, rp).status_code == 200
    assert lean.passed == []
    assert quiet == {"contexts": 0, "statements": 0} and len(executed) == 6


def test_a_client_cache_miss_reads_in_a_context_of_its_own(app, client, driver, rp, lean,
                                                           quiet):
    token = driver.tokens(rp)["access_token"]
    app.extensions["idp_oauth"].__dict__.pop("_client_cache", None)
    quiet.update(contexts=0, statements=0)
    lean.passed.clear()
    assert introspect(client, rp, token).get_json()["active"] is True
    assert lean.passed == [] and quiet == {"contexts": 1, "statements": 1}


def test_a_revocation_is_seen_at_once(client, driver, rp, lean, quiet):
    """The very next introspection after a revocation is the view's inactive answer (the
    signature check is remembered; the row is read again, on PostgreSQL because the
    revocation's commit emptied the state cache)."""
    token = driver.tokens(rp)["access_token"]
    assert introspect(client, rp, token).get_json()["active"] is True
    assert _userinfo(client, token).status_code == 200
    revoked = client.post("/oauth/revoke", data={"token": token},
                          headers=basic_auth(rp.client_id, rp.client_secret))
    assert revoked.status_code == 200
    lean.passed.clear()
    assert introspect(client, rp, token).get_json() == {"active": False}
    assert _userinfo(client, token).status_code == 401
    assert lean.passed == ["/oauth/introspect", "/oauth/userinfo"]


def test_a_revoked_client_token_is_inactive(client, rp, lean, quiet):
    token = _cc(client, rp).get_json()["access_token"]
    lean.passed.clear()
    assert introspect(client, rp, token).get_json()["active"] is True
    assert lean.passed == []
    client.post("/oauth/revoke", data={"token": token},
                headers=basic_auth(rp.client_id, rp.client_secret))
    lean.passed.clear()
    assert introspect(client, rp, token).get_json() == {"active": False}
    assert lean.passed == ["/oauth/introspect"]


def test_a_disabled_tenant_or_a_membership_row_gone(app, client, driver, rp, lean):
    """A disabled tenant makes its users' access tokens inactive at once, as their refresh
    tokens are (the fast path declines, the view says so); enabled again, they are active.
    A membership row gone (not through the service) leaves the token active without its
    org claims: both paths agree."""
    from idp.models import Membership, Tenant

    token = driver.tokens(rp)["access_token"]

    def tenant_active(active: bool) -> None:
        with app.app_context():
            db.session.execute(db.update(Tenant).values(active=active))
            db.session.commit()

    tenant_active(False)
    lean.passed.clear()
    assert introspect(client, rp, token).get_json() == {"active": False}
    assert _userinfo(client, token).status_code == 401
    assert lean.passed == ["/oauth/introspect", "/oauth/userinfo"]
    tenant_active(True)
    ours, theirs = _both(lean, lambda: introspect(client, rp, token))
    assert _same_answer(ours, theirs)["active"] is True
    with app.app_context():
        db.session.execute(db.delete(Membership))
        db.session.commit()
    ours, theirs = _both(lean, lambda: introspect(client, rp, token))
    body = _same_answer(ours, theirs)
    assert body == theirs.get_json() and body["active"] is True and "org_slug" not in body
    ours, theirs = _both(lean, lambda: _userinfo(client, token))
    assert _same_answer(ours, theirs) == theirs.get_json()


def test_a_client_that_no_longer_serves_the_tenant_holds_no_active_token(app, client, driver,
                                                                         factory, alice, lean):
    """Shared with acme only, then with another tenant only: acme's tokens of that client
    are inactive at introspection and userinfo, as its refresh tokens are."""
    from idp.models import Client
    from idp.services import clients

    rp = _shared_client_of_acme_only(factory)
    token = driver.tokens(rp, scope="openid email")["access_token"]
    assert introspect(client, rp, token).get_json()["active"] is True
    other = factory.tenant("gamma", "Gamma")
    clients.share_with(db.session.query(Client).filter_by(client_id=rp.client_id).one(),
                       [other])
    db.session.commit()
    lean.passed.clear()
    assert introspect(client, rp, token).get_json() == {"active": False}
    assert _userinfo(client, token).status_code == 401
    assert lean.passed == ["/oauth/introspect", "/oauth/userinfo"]


def test_a_membership_removed_kills_its_tokens(app, client, driver, rp, lean):
    from idp.models import Tenant
    from idp.services import memberships

    token = driver.tokens(rp)["access_token"]
    assert introspect(client, rp, token).get_json()["active"] is True
    with app.app_context():
        memberships.remove(db.session.scalar(db.select(Tenant)), "alice@example.com")
        db.session.commit()
    lean.passed.clear()
    assert introspect(client, rp, token).get_json() == {"active": False}
    assert _userinfo(client, token).status_code == 401
    assert lean.passed == ["/oauth/introspect", "/oauth/userinfo"]


def test_reloaded_keys_count_at_once(app, client, driver, rp, lean, monkeypatch, tmp_path):
    """The key store is read from the app on each request: a token signed by keys the
    store no longer has is the view's to refuse."""
    from idp.oauth.keys import KeyStore, ensure_keys

    token = driver.tokens(rp)["access_token"]
    assert introspect(client, rp, token).get_json()["active"] is True
    ensure_keys(tmp_path)
    monkeypatch.setitem(app.extensions, "idp_keys", KeyStore(tmp_path))
    lean.passed.clear()
    assert introspect(client, rp, token).get_json() == {"active": False}
    assert _userinfo(client, token).status_code == 401
    assert lean.passed == ["/oauth/introspect", "/oauth/userinfo"]


def test_a_failing_database_connection_is_left_to_the_view(app, client, driver, rp, lean,
                                                          monkeypatch):
    """The thread's DBAPI connection failing: it is dropped and the view answers, through
    the pool, the same 200 (and the next lean request opens a new connection)."""
    from idp.services import dbapi

    token = driver.tokens(rp)["access_token"]
    real = dbapi.fetch_first

    def failing(statement, engine, params):
        with dbapi.connection(engine) as connection:
            connection.dbapi.close()  # as a server restart would
            return statement.first(connection, params)

    monkeypatch.setattr(dbapi, "fetch_first", failing)
    lean.passed.clear()
    response = introspect(client, rp, token)
    assert response.status_code == 200 and response.get_json()["active"] is True
    assert _userinfo(client, token).status_code == 200
    assert lean.passed == ["/oauth/introspect", "/oauth/userinfo"]
    monkeypatch.setattr(dbapi, "fetch_first", real)
    lean.passed.clear()
    assert introspect(client, rp, token).get_json()["active"] is True
    assert lean.passed == []


def test_two_apps_each_answer_from_their_own_database_and_keys(app, client, rp, lean,
                                                               tmp_path, monkeypatch):
    """Nothing of one app leaks into another's lean path: its client cache, engine, DBAPI
    connection and keys are its own, even while another app's context is pushed (the
    ``ctx`` fixture here) and with a client of the same id and another secret."""
    from flask.testing import FlaskClient
    from flask_migrate import upgrade

    from idp import create_app
    from idp.oauth.keys import ensure_keys
    from idp.observability import readiness_problems
    from idp.services.clients import create_client

    monkeypatch.setenv("IDP_INSTANCE_DIR", str(tmp_path))
    other = create_app({"TESTING": True, "SERVER_NAME": None,
                        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'other.db'}",
                        "IDP_ISSUER": "http://other.example", "IDP_KEYS_DIR": str(tmp_path / "k"),
                        "IDP_ENABLE_MAIL_WORKER": False})
    other.test_client_class = FlaskClient
    ensure_keys(other.config["IDP_KEYS_DIR"])
    with other.app_context():
        upgrade(directory=other.extensions["migrate"].directory)
        twin = create_client("Twin", ["https://twin.example/cb"], client_id=rp.client_id,
                             grant_types=["client_credentials"])
        db.session.commit()
    assert not readiness_problems(other)
    other.extensions["idp_ready"].set()
    theirs = other.test_client()
    twin_auth = basic_auth(rp.client_id, twin.client_secret)
    token = theirs.post("/oauth/token", data={"grant_type": "client_credentials"},
                        headers=twin_auth).get_json()["access_token"]
    mine = _cc(client, rp).get_json()["access_token"]
    for _ in range(2):  # the second time from each app's client cache
        found = theirs.post("/oauth/introspect", data={"token": token}, headers=twin_auth)
        assert found.get_json()["active"] is True and found.get_json()["iss"] == \
            "http://other.example"
        assert introspect(client, rp, mine).get_json()["active"] is True
    assert other.extensions["idp_lean"].engine() is not lean.engine()
    # Each app's token is unknown to the other (its keys), and each secret to the other.
    assert introspect(client, rp, token).get_json() == {"active": False}
    assert theirs.post("/oauth/introspect", data={"token": mine},
                       headers=twin_auth).get_json() == {"active": False}
    assert theirs.post("/oauth/introspect", data={"token": token}, headers=basic_auth(
        rp.client_id, rp.client_secret)).status_code == 401
    with other.app_context():
        db.engine.dispose()
def _token_row(refresh_token):
    from idp.models import Token

    db.session.rollback()  # a fresh snapshot: the lean path wrote on its own connection
    return db.session.query(Token).filter_by(refresh_hash=digest(refresh_token)).one()


def test_the_fast_refresh_runs_nothing_through_sqlalchemy(app, client, driver, rp, lean):
    """The fast path reads and writes the tokens on the thread's DBAPI connection
    (idp.services.dbapi): no token statement goes through SQLAlchemy's engine (the client
    lookup may: the tests run without the client cache), and the rotation is committed."""
    first = driver.tokens(rp)
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if "oauth_tokens" in statement:
            statements.append(statement)

    db.event.listen(db.engine, "before_cursor_execute", count)
    try:
        lean.passed.clear()
        response = _refresh(client, rp, first["refresh_token"])
    finally:
        db.event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200 and lean.passed == []
    assert statements == []
    assert _token_row(first["refresh_token"]).rotated_at is not None
    fresh = _token_row(response.get_json()["refresh_token"])
    assert fresh.rotated_at is None and fresh.revoked_at is None and fresh.grant_id is not None


def test_a_token_revoked_between_the_read_and_the_claim_is_not_claimed(client, driver, rp,
                                                                       lean, monkeypatch):
    """The read is outside the write; the claim refuses a token revoked meanwhile (a replay
    elsewhere killing the family, a logout): nothing written, the view says invalid_grant."""
    from idp.models import Token

    first = driver.tokens(rp)
    _after_the_lean_read(monkeypatch, lean, lambda other, state: other.execute(
        db.update(Token).where(Token.id == state.id).values(revoked_at=1)))
    db.session.rollback()
    count = db.session.query(Token).count()
    lean.passed.clear()
    response = _refresh(client, rp, first["refresh_token"])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert lean.passed == ["/oauth/token"]
    assert _token_row(first["refresh_token"]).rotated_at is None
    assert db.session.query(Token).count() == count


def _shared_client_of_acme_only(factory):
    """A shared client listed for acme: alice's tokens there are bound to acme."""
    from idp.models import Client
    from idp.services import clients
    from idp.services.tenants import get_by_slug

    shared = factory.client(shared=True)
    clients.share_with(db.session.query(Client).filter_by(client_id=shared.client_id).one(),
                       [get_by_slug("acme")])
    db.session.commit()
    return shared


def _break(case, app, factory, clock, rp):
    """Make the family's next refresh invalid in one way (each a rule of refresh_grant_valid)."""
    from idp.models import Client, Membership, Token, User
    from idp.services import clients, memberships
    from idp.services.tenants import get_by_slug
    from idp.services.tokens import revoke_grant

    if case == "grant-revoked":
        revoke_grant(db.session.query(Token.grant_id).filter(Token.grant_id.isnot(None))
                     .first()[0])
    elif case == "expired":
        clock.advance(app.config["IDP_REFRESH_IDLE_TTL"] + 1)
    elif case == "user-disabled":
        db.session.execute(db.update(User).values(active=False))
    elif case == "membership-gone":  # the row alone, without the revocation remove() does
        db.session.execute(db.delete(Membership))
    elif case == "tenant-disabled":
        memberships.set_active(get_by_slug("acme"), False)
    elif case == "client-stops-serving":
        other = factory.tenant("gamma", "Gamma")
        clients.share_with(db.session.query(Client).filter_by(client_id=rp.client_id).one(),
                           [other])
    db.session.commit()


@pytest.mark.parametrize("case", ["grant-revoked", "expired", "user-disabled", "membership-gone",
                                  "tenant-disabled", "client-stops-serving"])
def test_each_rule_of_a_valid_refresh_holds_on_the_fast_path(app, client, driver, factory, alice,
                                                             clock, lean, case):
    """The same family refreshes through the fast path, then, once the rule is broken, is
    refused: the fast path declines and the view answers invalid_grant."""
    rp = _shared_client_of_acme_only(factory)
    first = driver.tokens(rp)
    lean.passed.clear()
    second = _refresh(client, rp, first["refresh_token"])
    assert second.status_code == 200 and lean.passed == []
    assert decode(client, second.get_json()["access_token"]).claims["org_slug"] == "acme"
    _break(case, app, factory, clock, rp)
    lean.passed.clear()  # decode's JWKS may have gone through the app (keys reloaded)
    refused = _refresh(client, rp, second.get_json()["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert lean.passed == ["/oauth/token"]


def test_the_fast_refresh_keeps_org_name_in_the_asked_language(client, driver, factory, lean):
    from idp.services.tenants import get_by_slug

    factory.user()
    acme = get_by_slug("acme")
    acme.settings = {**(acme.settings or {}), "brand_names": {"fr": "Acme Flotte"}}
    db.session.commit()
    rp = factory.client(tenant=acme)
    first = driver.exchange(rp, driver.code_flow(rp, claims_locales="fr-CA en")).get_json()
    lean.passed.clear()
    ours = _refresh(client, rp, first["refresh_token"])
    assert ours.status_code == 200 and lean.passed == []
    lean.enabled = False
    theirs = _refresh(client, rp, ours.get_json()["refresh_token"])
    lean.enabled = True
    assert lean.passed == ["/oauth/token"]
    for answer in (ours, theirs):
        assert decode(client, answer.get_json()["access_token"]).claims["org_name"] == \
            "Acme Flotte"


def test_on_postgresql_the_answer_is_made_while_the_rotation_commits(app, client, driver, rp,
                                                                     lean, monkeypatch):
    """The token's read is sent, the client authenticated, the read's answer taken; then
    the rotation is sent, the answer signed and rendered, and only then is the database's
    answer read; the answer goes out only if the claim won."""
    from idp.services import dbapi

    if lean.engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (IDP_TEST_DATABASE_URL): SQLite reads and commits first")
    events = []

    def recording(owner, name, event):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            events.append(event)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    recording(dbapi.Statement, "send", "sent")
    recording(dbapi.Pending, "rows", "token read")
    recording(dbapi.Pending, "rowcount", "answer read")
    recording(lean_module, "authenticated_client", "client authenticated")
    recording(lean_module, "token_answer", "rendered")
    first = driver.tokens(rp)
    lean.passed.clear()
    response = _refresh(client, rp, first["refresh_token"])
    assert response.status_code == 200 and lean.passed == []
    assert events == ["sent", "client authenticated", "token read",
                      "sent", "rendered", "answer read"]
    second = _refresh(client, rp, response.get_json()["refresh_token"])
    assert second.status_code == 200 and "refresh_token" in second.get_json()
