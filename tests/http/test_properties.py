"""Property-based checks: whatever arrives at the protocol endpoints, the answer is a
4xx with the RFC's shape (or a success), never a 5xx, and the authorization endpoint
never redirects anywhere but the client's registered URI or the IdP's own pages."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import basic_auth, pkce_pair

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

AUTHORIZE_PARAMS = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                    "prompt", "max_age", "login_hint", "id_token_hint", "ui_locales", "claims",
                    "acr_values", "code_challenge", "code_challenge_method", "response_mode",
                    "organization", "display", "request", "request_uri", "junk"]
TOKEN_PARAMS = ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
                "client_id", "client_secret", "client_assertion", "client_assertion_type",
                "token", "token_type_hint", "junk"]
TOKEN_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                "unsupported_grant_type", "invalid_scope"}

SPECIAL = ["code", "token", "id_token token", "none", "login", "S256", "plain", "form_post",
           "openid", "openid email offline_access", "0", "-1", "99999999999", "{}", "[]",
           '{"id_token":{"acr":{"essential":true,"values":5}}}', "a.b.c", "..", "\x00",
           "\u00b2", "\u0663", "acme", "urn:idp:loa:2",
           "https://app.example.com/cb", "https://app.example.com/cb/", "http://127.0.0.1/cb",
           "http://127.0.0.1:9/cb", "javascript:alert(1)", "é" * 50, "x" * 5000,
           "authorization_code", "refresh_token", "client_credentials", "password",
           "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
values = st.one_of(st.sampled_from(SPECIAL), st.text(max_size=60),
                   st.text(alphabet=st.characters(codec="utf-8"), max_size=300))


def _multi(names):
    pairs = st.tuples(st.sampled_from(names), values)
    return st.lists(pairs, max_size=12)


def _is_allowed_redirect(location: str, registered: set[str]) -> bool:
    if location.startswith("/") and not location.startswith("//"):
        return True
    return any(location == uri or location.startswith(uri + "?") for uri in registered)


@pytest.fixture
def clients(factory, alice):
    confidential = factory.client()
    public = factory.client(redirect_uri="http://127.0.0.1/cb", public=True)
    return confidential, public


def _fill(pairs, clients, use_real: bool):
    """Random pairs, sometimes with a real client id and redirect URI to get deeper."""
    if not use_real:
        return pairs
    rp = clients[len(pairs) % 2]
    _, challenge = pkce_pair()
    base = [("client_id", rp.client_id), ("redirect_uri", rp.redirect_uri),
            ("response_type", "code"), ("code_challenge", challenge),
            ("code_challenge_method", "S256")]
    names = {name for name, _ in pairs}
    return [p for p in base if p[0] not in names] + pairs


@SETTINGS
@given(pairs=_multi(AUTHORIZE_PARAMS), use_real=st.booleans(), method=st.sampled_from(
    ["GET", "POST"]))
def test_authorize_never_fails_or_redirects_elsewhere(client, clients, pairs, use_real, method):
    pairs = _fill(pairs, clients, use_real)
    if method == "GET":
        response = client.get("/oauth/authorize", query_string=urlencode(pairs))
    else:
        response = client.post("/oauth/authorize", data=urlencode(pairs),
                               content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500, (pairs, response.status_code)
    assert response.status_code in (200, 302, 303, 400, 413), response.status_code
    if response.status_code in (302, 303):
        registered = {c.redirect_uri for c in clients}
        location = response.headers["Location"]
        assert _is_allowed_redirect(location, registered) or location.startswith(
            "http://127.0.0.1:"), location
        if not location.startswith("/"):
            assert "iss=" in location
        if method == "POST":
            assert response.status_code == 303


@SETTINGS
@given(pairs=_multi(AUTHORIZE_PARAMS))
def test_authorize_with_a_session_never_fails(client, driver, clients, pairs):
    """Signed in, the request reaches the plan (max_age, prompt, hints, claims, tenants)."""
    if not client.get_cookie("idp_session"):
        driver.sign_in()
    pairs = _fill(pairs, clients, True)
    response = client.get("/oauth/authorize", query_string=urlencode(pairs))
    assert response.status_code in (200, 302, 303, 400), (pairs, response.status_code)
    if response.status_code in (302, 303):
        location = response.headers["Location"]
        assert _is_allowed_redirect(location, {c.redirect_uri for c in clients}) or \
            location.startswith("http://127.0.0.1:"), location


@SETTINGS
@given(raw=st.binary(max_size=400))
def test_authorize_survives_raw_query_bytes(client, clients, raw):
    response = client.get("/oauth/authorize", query_string=raw.decode("latin-1"))
    assert response.status_code < 500


@SETTINGS
@given(pairs=_multi(TOKEN_PARAMS), auth=st.sampled_from(["none", "basic", "bad-basic", "raw"]),
       header=st.binary(max_size=80))
def test_token_never_fails(client, clients, pairs, auth, header):
    rp = clients[0]
    headers = {}
    if auth == "basic":
        headers = basic_auth(rp.client_id, rp.client_secret)
    elif auth == "bad-basic":
        headers = basic_auth(rp.client_id, "wrong")
    elif auth == "raw":
        raw = header.replace(b"\r", b"").replace(b"\n", b"").decode("latin-1")
        headers = {"Authorization": "Basic " + raw}
    response = client.post("/oauth/token", data=urlencode(pairs), headers=headers,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500, (pairs, auth)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    if response.status_code == 200:
        assert body["token_type"] == "Bearer"
    else:
        assert response.status_code in (400, 401) and body["error"] in TOKEN_ERRORS, body


@SETTINGS
@given(pairs=_multi(TOKEN_PARAMS + ["id_token_hint", "post_logout_redirect_uri", "state"]),
       endpoint=st.sampled_from(["/oauth/revoke", "/oauth/introspect", "/oauth/userinfo",
                                 "/oauth/logout"]),
       bearer=st.one_of(st.none(), st.text(max_size=100)))
def test_other_endpoints_never_fail(client, clients, pairs, endpoint, bearer):
    rp = clients[0]
    headers = basic_auth(rp.client_id, rp.client_secret)
    if endpoint == "/oauth/userinfo" and bearer is not None:
        headers = {"Authorization": "Bearer " + bearer.replace("\n", " ").replace("\r", " ")}
    response = client.post(endpoint, data=urlencode(pairs), headers=headers,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500, (endpoint, pairs)
    if endpoint == "/oauth/logout" and response.status_code in (302, 303):
        location = response.headers["Location"]
        assert location.startswith("/") or location.startswith("https://app.example.com/bye")
