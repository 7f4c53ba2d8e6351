"""The authorization endpoint refuses bad requests with the RFC's error, never a 500.

Errors that cannot be trusted to reach the client (unknown client, bad or missing
redirect_uri, a repeated client_id/redirect_uri) are a 400 page; the others go back to
the registered redirect URI with `error`, `state` and `iss` (RFC 6749 4.1.2.1, RFC 9207).
"""

from __future__ import annotations

import json

import pytest

from tests.http.helpers import assert_error_page, assert_error_redirect
from tests.support import REDIRECT_URI, pkce_pair, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

CHALLENGE = pkce_pair()[1]


def _query(rp, **params):
    query = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "scope": "openid", "state": "s1", "code_challenge": CHALLENGE,
             "code_challenge_method": "S256"}
    query.update(params)
    return {k: v for k, v in query.items() if v is not None}


def test_a_valid_request_goes_to_login(client, rp):
    response = client.get("/oauth/authorize", query_string=_query(rp))
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?flow=")


@pytest.mark.parametrize("params", [
    {"client_id": None},
    {"client_id": "no-such-client"},
    {"client_id": "x" * 5000},
    {"redirect_uri": None},
    {"redirect_uri": "https://evil.example.com/cb"},
    {"redirect_uri": 'https://app.example.com/cb"'},
    {"redirect_uri": "https://app.example.com/cbé"},
    {"redirect_uri": "https://app.example.com/cb\x00"},
], ids=["no-client", "unknown-client", "huge-client", "no-redirect", "other-redirect",
        "quote-redirect", "unicode-redirect", "nul-redirect"])
def test_untrusted_client_or_redirect_gets_an_error_page(client, rp, params):
    response = client.get("/oauth/authorize", query_string=_query(rp, **params))
    assert_error_page(response)


@pytest.mark.parametrize("name", ["client_id", "redirect_uri", "response_type", "scope", "state"])
def test_repeated_core_parameter_is_an_error_page(client, rp, name):
    query = list(_query(rp).items()) + [(name, _query(rp)[name])]
    response = client.get("/oauth/authorize", query_string=query)
    assert_error_page(response)


@pytest.mark.parametrize("name,value", [
    ("nonce", "n"), ("prompt", "login"), ("max_age", "5"), ("code_challenge", CHALLENGE),
    ("code_challenge_method", "S256"), ("response_mode", "query"), ("claims", "{}"),
])
def test_repeated_oidc_parameter_is_invalid_request(app, client, rp, name, value):
    query = list(_query(rp, **{name: value}).items()) + [(name, value)]
    response = client.get("/oauth/authorize", query_string=query)
    assert_error_redirect(response, REDIRECT_URI, "invalid_request", state="s1",
                          issuer=app.config["IDP_ISSUER"])


@pytest.mark.parametrize("params,error", [
    ({"response_type": None}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": "id_token token"}, "unsupported_response_type"),
    ({"response_type": "code id_token"}, "unsupported_response_type"),
    ({"response_type": "id_token"}, "unsupported_response_type"),
    ({"response_type": 'tok"en\u00e9'}, "unsupported_response_type"),
    ({"scope": "openid admin"}, "invalid_scope"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"prompt": "sometimes"}, "invalid_request"),
    ({"max_age": "-1"}, "invalid_request"),
    ({"max_age": "soon"}, "invalid_request"),
    ({"max_age": "9" * 40}, "invalid_request"),
    ({"max_age": "\u00b2"}, "invalid_request"),
    ({"max_age": "\u0663"}, "invalid_request"),
    ({"max_age": " 5"}, "invalid_request"),
    ({"response_mode": "fragment"}, "invalid_request"),
    ({"claims": "{not json"}, "invalid_request"),
    ({"claims": "[1, 2]"}, "invalid_request"),
    ({"claims": '{"id_token": "acr"}'}, "invalid_request"),
    ({"claims": "[" * 3000 + "]" * 1000}, "invalid_request"),
    ({"claims": '{"id_token": {"acr": {"essential": true, "values": 5}}}'}, "invalid_request"),
    ({"claims": '{"id_token": {"acr": {"essential": "yes"}}}'}, "invalid_request"),
    ({"id_token_hint": "not-a-jwt"}, "invalid_request"),
    ({"id_token_hint": "a.b.c"}, "invalid_request"),
    ({"id_token_hint": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}, "invalid_request"),
], ids=lambda v: json.dumps(v)[:40] if isinstance(v, dict) else v)
def test_bad_parameters_are_sent_back_with_state_and_iss(app, client, rp, params, error):
    response = client.get("/oauth/authorize", query_string=_query(rp, **params))
    assert_error_redirect(response, REDIRECT_URI, error, state="s1",
                          issuer=app.config["IDP_ISSUER"])


@pytest.mark.parametrize("max_age", ["\u00b2", "\u0663", "1e3", "0x10"])
def test_odd_max_age_with_a_session_is_invalid_request(client, driver, rp, max_age):
    driver.sign_in()  # with a session, max_age is compared with the login time
    response = client.get("/oauth/authorize", query_string=_query(rp, max_age=max_age))
    assert_error_redirect(response, REDIRECT_URI, "invalid_request", state="s1")


def test_client_without_the_code_grant_is_unauthorized(app, client, factory, alice):
    service = factory.client(grant_types=["client_credentials"])
    response = client.get("/oauth/authorize", query_string=_query(service))
    assert_error_redirect(response, REDIRECT_URI, "unauthorized_client", state="s1",
                          issuer=app.config["IDP_ISSUER"])


def test_scope_the_client_may_not_have_is_dropped_not_granted(client, factory, driver, alice):
    narrow = factory.client()
    narrow_row = _client_row(narrow.client_id)
    narrow_row.scope = "openid email"
    from idp.extensions import db

    db.session.commit()
    tokens = driver.tokens(narrow, scope="openid email phone")
    assert tokens["scope"] == "openid email"


# --- request objects (OIDC Core 6): not supported, and never silently ignored ------------


def _request_object(rp, **claims) -> str:
    """An unsigned request object (alg none), as a relying party would send one."""
    import base64

    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    body = {"iss": rp.client_id, "aud": "idp", "response_type": "code",
            "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
            "state": "inner-state", **claims}
    return ".".join([part({"alg": "none"}), part(body), ""])


@pytest.mark.parametrize("name,error", [("request", "request_not_supported"),
                                        ("request_uri", "request_uri_not_supported")])
def test_request_objects_are_refused_with_state_and_iss(app, client, driver, rp, name, error):
    # Signed in: before the fix the code came back, without the state only inside the object.
    driver.sign_in()
    value = _request_object(rp) if name == "request" else "https://app.example.com/req.jwt"
    response = client.get("/oauth/authorize", query_string=_query(rp, state="outer",
                                                                  **{name: value}))
    params = assert_error_redirect(response, REDIRECT_URI, error, state="outer",
                                   issuer=app.config["IDP_ISSUER"])
    assert "code" not in params


@pytest.mark.parametrize("name", ["request", "request_uri"])
def test_request_object_without_state_in_the_query(app, client, rp, name):
    response = client.get("/oauth/authorize", query_string=_query(
        rp, state=None, **{name: _request_object(rp)}))
    params = assert_error_redirect(response, REDIRECT_URI, f"{name}_not_supported",
                                   issuer=app.config["IDP_ISSUER"])
    assert "state" not in params


def test_request_object_error_wins_over_what_the_object_would_have_carried(app, client,
                                                                          native):
    # The PKCE challenge is inside the object: the error to report is the object's.
    response = client.get("/oauth/authorize", query_string=_query(
        native, code_challenge=None, code_challenge_method=None,
        request=_request_object(native, code_challenge=CHALLENGE)))
    assert_error_redirect(response, native.redirect_uri, "request_not_supported",
                          state="s1", issuer=app.config["IDP_ISSUER"])


@pytest.mark.parametrize("params", [{"redirect_uri": None}, {"client_id": "no-such-client"},
                                    {"redirect_uri": "https://evil.example.com/cb"}])
def test_request_object_with_an_untrusted_client_or_redirect_is_a_page(client, rp, params):
    # The client and the redirect URI come first: no error is sent to an unchecked address.
    response = client.get("/oauth/authorize", query_string=_query(
        rp, request=_request_object(rp), **params))
    assert_error_page(response)


def _client_row(client_id):
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import Client

    return db.session.scalar(select(Client).where(Client.client_id == client_id))


@pytest.mark.parametrize("name", ["state", "nonce", "login_hint", "claims", "id_token_hint"])
def test_oversized_parameter_is_refused_without_redirect(client, rp, name):
    response = client.get("/oauth/authorize", query_string=_query(rp, **{name: "x" * 10_000}))
    assert_error_page(response)


def test_oversized_unknown_parameter_is_ignored(client, rp):
    response = client.get("/oauth/authorize", query_string=_query(rp, junk="x" * 10_000))
    assert response.status_code == 303


def test_oversized_post_body_is_413(client, rp):
    response = client.post("/oauth/authorize", data=_query(rp, junk="x" * 100_000))
    assert response.status_code == 413


def test_post_redirects_are_303(app, client, rp):
    to_login = client.post("/oauth/authorize", data=_query(rp))
    assert to_login.status_code == 303
    error = client.post("/oauth/authorize", data=_query(rp, response_type="token"))
    assert error.status_code == 303
    assert_error_redirect(error, REDIRECT_URI, "unsupported_response_type", state="s1",
                          issuer=app.config["IDP_ISSUER"])


def test_post_success_is_303_with_code_and_iss(app, client, driver, rp):
    driver.sign_in()
    response = client.post("/oauth/authorize", data=_query(rp))
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = query_of(location)
    assert params["code"] and params["state"] == "s1"
    assert params["iss"] == app.config["IDP_ISSUER"]


def test_authorize_sends_no_cors_headers(client, rp):
    origin = {"Origin": "https://evil.example.com"}
    for response in (
        client.get("/oauth/authorize", query_string=_query(rp), headers=origin),
        client.get("/oauth/authorize", query_string=_query(rp, client_id="nope"), headers=origin),
        client.options("/oauth/authorize", headers={**origin,
                                                    "Access-Control-Request-Method": "GET"}),
    ):
        assert not [h for h in response.headers.keys() if h.lower().startswith("access-control")]
