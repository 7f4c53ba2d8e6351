"""The demo portal (demo/) on its own: no code shared with idp, back-channel logout checks."""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from demo.portal import LOGOUT_EVENT, create_app, settings

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
ISSUER = "http://idp.test"


def test_the_demo_imports_nothing_from_idp():
    sources = sorted(DEMO_DIR.rglob("*.py"))
    assert len(sources) >= 3
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("idp", "tests", "wsgi"), f"{source}: {name}"


def test_settings_come_from_the_environment_and_the_demo_client_file(tmp_path, monkeypatch):
    (tmp_path / "demo_client.json").write_text(
        json.dumps({"client_id": "acme-portal", "client_secret": "s3cret"}))
    monkeypatch.setenv("IDP_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("IDP_DEMO_PORT", "8181")
    monkeypatch.setenv("IDP_ISSUER", "http://localhost:5001/")
    monkeypatch.delenv("DEMO_CLIENT_ID", raising=False)
    assert settings() == {"DEMO_ISSUER": "http://localhost:5001",
                          "DEMO_BASE_URL": "http://localhost:8181",
                          "DEMO_CLIENT_ID": "acme-portal", "DEMO_CLIENT_SECRET": "s3cret"}
    monkeypatch.setenv("DEMO_CLIENT_ID", "other")
    monkeypatch.setenv("DEMO_CLIENT_SECRET", "other-secret")
    assert settings()["DEMO_CLIENT_ID"] == "other"
    assert settings()["DEMO_CLIENT_SECRET"] == "other-secret"


@pytest.fixture(scope="module")
def key():
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"},
                               private=True)


@pytest.fixture
def portal(key):
    """The portal with the provider's metadata and keys preloaded (no IdP running)."""
    app = create_app({"DEMO_ISSUER": ISSUER, "DEMO_BASE_URL": "http://localhost",
                      "DEMO_CLIENT_ID": "demo-rp", "DEMO_CLIENT_SECRET": "x"})
    provider = app.extensions["authlib.integrations.flask_client"].provider
    provider.server_metadata.update({
        "issuer": ISSUER, "_loaded_at": time.time(), "jwks": {"keys": [key.as_dict(private=False)]},
        "id_token_signing_alg_values_supported": ["RS256"]})
    return app


def logout_token(key, **changes) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "demo-rp", "iat": now, "exp": now + 120, "jti": str(now),
              "sub": "user-1", "sid": "sid-1", "events": {LOGOUT_EVENT: {}}}
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "RS256", "kid": "k1", "typ": "logout+jwt"}, claims, key)


def test_a_valid_logout_token_ends_the_session_it_names(portal, key):
    store = portal.extensions["demo_store"]
    store.save("mine", {"claims": {"sid": "sid-1", "sub": "user-1"}})
    store.save("other", {"claims": {"sid": "sid-2", "sub": "user-1"}})
    response = portal.test_client().post("/backchannel-logout",
                                         data={"logout_token": logout_token(key)})
    assert response.status_code == 200
    assert store.get("mine") is None and store.get("other") is not None
    assert store.logouts[-1]["sid"] == "sid-1" and store.logouts[-1]["sub"] == "user-1"


@pytest.mark.parametrize("changes", [
    {"iss": "http://evil.test"}, {"aud": "someone-else"}, {"iat": None},
    {"exp": int(time.time()) - 3600}, {"events": None}, {"events": {"other": {}}},
    {"nonce": "n-1"}, {"sid": None, "sub": None}])
def test_invalid_logout_tokens_are_refused(portal, key, changes):
    response = portal.test_client().post(
        "/backchannel-logout", data={"logout_token": logout_token(key, **changes)})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert not portal.extensions["demo_store"].logouts


def test_a_logout_token_signed_by_another_key_or_replayed_is_refused(portal, key):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
    http = portal.test_client()
    assert http.post("/backchannel-logout",
                     data={"logout_token": logout_token(stranger)}).status_code == 400
    assert http.post("/backchannel-logout", data={"logout_token": "garbage"}).status_code == 400
    token = logout_token(key)
    assert http.post("/backchannel-logout", data={"logout_token": token}).status_code == 200
    assert http.post("/backchannel-logout", data={"logout_token": token}).status_code == 400


def test_posts_need_the_pages_csrf_token(portal):
    http = portal.test_client()
    page = http.get("/")
    assert page.status_code == 200
    for path in ("/login", "/switch", "/refresh", "/logout"):
        response = http.post(path, data={"csrf_token": "forged"})
        assert response.status_code == 400, path
        assert "The form expired" in response.text


def test_the_provider_down_is_a_clear_503():
    app = create_app({"DEMO_ISSUER": "http://127.0.0.1:9", "DEMO_BASE_URL": "http://localhost",
                      "DEMO_CLIENT_ID": "demo-rp", "DEMO_CLIENT_SECRET": "x"})
    http = app.test_client()
    csrf = http.get("/").text.split('name="csrf_token" value="')[1].split('"')[0]
    response = http.post("/login", data={"csrf_token": csrf})
    assert response.status_code == 503
    assert "does not answer yet" in response.text
