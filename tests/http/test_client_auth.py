"""Client authentication at the token endpoint (RFC 6749 2.3 and 5.2, RFC 7523, OIDC Core 9).

Bad credentials are `invalid_client`; with HTTP Basic the answer is 401 with a
`WWW-Authenticate: Basic` challenge. private_key_jwt assertions are verified with the
client's registered keys and accepted once.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from idp.extensions import db
from tests.http.helpers import b64, decode
from tests.support import basic_auth

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _invalid_client(response, status=None):
    assert response.status_code in ((status,) if status else (400, 401)), response.status_code
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["Cache-Control"] == "no-store"
    return response


def _basic_challenge(response):
    _invalid_client(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def _cc(client, headers=None, **form):
    return client.post("/oauth/token", data={"grant_type": "client_credentials", **form},
                       headers=headers or {})


def test_basic_with_the_right_secret(client, rp):
    response = _cc(client, basic_auth(rp.client_id, rp.client_secret))
    assert response.status_code == 200


def test_basic_with_a_wrong_secret_is_401_with_a_challenge(client, rp):
    _basic_challenge(_cc(client, basic_auth(rp.client_id, rp.client_secret + "x")))


def test_basic_for_an_unknown_client_is_401(client, rp):
    _basic_challenge(_cc(client, basic_auth("nobody", "secret")))


@pytest.mark.parametrize("header", [
    "Basic " + b64(b"\xff\xfe:\xff"),  # not UTF-8
    "Basic !!!not-base64!!!",
    "Basic " + b64(b"no-colon-here"),
    "Basic " + b64(b":"),
    "Basic ",
    "Basic " + b64(("x" * 5000 + ":y").encode()),
])
def test_malformed_basic_header_is_invalid_client(client, rp, header):
    _invalid_client(_cc(client, {"Authorization": header}))


def test_secret_with_reserved_characters_round_trips(client, factory, alice):
    # RFC 6749 2.3.1: Basic credentials are form-urlencoded first; ours are URL-safe anyway.
    rp = factory.client()
    assert rp.client_secret == requests.utils.quote(rp.client_secret, safe="")


def test_post_with_a_wrong_secret_is_invalid_client(client, factory, alice):
    rp = factory.client(auth_method="client_secret_post")
    ok = _cc(client, client_id=rp.client_id, client_secret=rp.client_secret)
    assert ok.status_code == 200
    _invalid_client(_cc(client, client_id=rp.client_id, client_secret="wrong"))


def test_a_secret_may_be_sent_either_way_by_default(client, rp):
    # openid-client (v6) sends client_secret_post unless told otherwise; Basic is the
    # other usual default: a client registered without --auth-method takes both.
    assert _cc(client, basic_auth(rp.client_id, rp.client_secret)).status_code == 200
    response = _cc(client, client_id=rp.client_id, client_secret=rp.client_secret)
    assert response.status_code == 200, response.get_json()


def test_a_pinned_method_is_the_only_one_accepted(client, factory, alice):
    basic_only = factory.client(auth_method="client_secret_basic")
    _invalid_client(_cc(client, client_id=basic_only.client_id,
                        client_secret=basic_only.client_secret))
    assert _cc(client, basic_auth(basic_only.client_id, basic_only.client_secret)) \
        .status_code == 200
    post_only = factory.client(auth_method="client_secret_post")
    _invalid_client(_cc(client, basic_auth(post_only.client_id, post_only.client_secret)))


def test_the_registration_says_which_methods(ctx):
    from idp.services.clients import ClientError, create_client

    def methods(**kwargs):
        return create_client("P", ["https://app.example.com/cb"], **kwargs) \
            .client.token_endpoint_auth_methods

    assert methods() == ["client_secret_basic", "client_secret_post"]
    assert methods(auth_method="client_secret_post") == ["client_secret_post"]
    assert methods(public=True) == ["none"]
    for bad in ({"auth_method": "client_secret_jwt"}, {"auth_method": "none"},
                {"public": True, "auth_method": "client_secret_basic"}):
        with pytest.raises(ClientError):
            methods(**bad)
    db.session.rollback()


def _two_methods(rp, assertion: str) -> list[tuple[dict, dict]]:
    """(headers, body) pairs that each carry two authentication methods."""
    secret = {"client_id": rp.client_id, "client_secret": rp.client_secret}
    asserted = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    basic = basic_auth(rp.client_id, rp.client_secret)
    return [(basic, secret), (basic, asserted), ({}, {**secret, **asserted})]


@pytest.mark.parametrize("case", [0, 1, 2], ids=["basic+post", "basic+assertion",
                                                 "post+assertion"])
@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_two_authentication_methods_are_invalid_request(client, rp, case, endpoint):
    """RFC 6749 2.3: one method per request. The credentials are right: the request is
    refused before any of them is tried."""
    headers, body = _two_methods(rp, "a.b.c")[case]
    form = {"grant_type": "client_credentials"} if endpoint == "/oauth/token" else {"token": "x"}
    response = client.post(endpoint, data={**form, **body}, headers=headers)
    assert response.status_code == 400, (response.status_code, response.get_json())
    assert response.get_json()["error"] == "invalid_request"
    assert response.headers["Cache-Control"] == "no-store"


def test_client_id_in_the_body_beside_basic_is_one_method(client, rp):
    # client_id alone authenticates nothing: Basic plus client_id is still one method.
    response = _cc(client, basic_auth(rp.client_id, rp.client_secret), client_id=rp.client_id)
    assert response.status_code == 200, response.get_json()


def test_confidential_client_without_credentials_is_invalid_client(client, rp):
    _invalid_client(_cc(client, client_id=rp.client_id))


def test_public_client_cannot_use_client_credentials(client, native):
    _invalid_client(_cc(client, client_id=native.client_id))


def test_secrets_are_stored_hashed(rp):
    from sqlalchemy import select

    from idp.models import Client

    row = db.session.scalar(select(Client).where(Client.client_id == rp.client_id))
    assert row.secret_hash and rp.client_secret not in row.secret_hash


# --- private_key_jwt --------------------------------------------------------------


class KeyClient:
    """A client registered with the public half of a key generated here."""

    def __init__(self, app, factory, key, alg):
        from idp.services.clients import create_client

        self.key, self.alg = key, alg
        registered = create_client(
            "Key client", ["https://keys.example.com/cb"], auth_method="private_key_jwt",
            jwks={"keys": [key.as_dict(private=False)]}, tenant=factory.tenant(),
            grant_types=["client_credentials", "authorization_code"])
        db.session.commit()
        self.client_id = registered.client.client_id
        self.issuer = app.config["IDP_ISSUER"]

    def assertion(self, key=None, header=None, **claims) -> str:
        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id,
                "aud": f"{self.issuer}/oauth/token", "iat": now, "exp": now + 60,
                "jti": secrets.token_urlsafe(12)}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        header = header or {"alg": self.alg, "kid": self.key.kid}
        return jwt.encode(header, body, key or self.key)

    def form(self, assertion: str, **extra) -> dict:
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion, **extra}


@pytest.fixture(scope="module")
def client_keys():
    """Generated once: an RSA key takes a while, and each test registers its own client."""
    return {"ES256": ECKey.generate_key("P-256", private=True, parameters={"kid": "k-ec"}),
            "RS256": RSAKey.generate_key(2048, private=True, parameters={"kid": "k-rsa"})}


@pytest.fixture(params=["ES256", "RS256"])
def key_client(request, app, factory, client_keys):
    return KeyClient(app, factory, client_keys[request.param], request.param)


def test_private_key_jwt_authenticates(client, key_client):
    response = _cc(client, **key_client.form(key_client.assertion()))
    assert response.status_code == 200, response.get_json()
    claims = decode(client, response.get_json()["access_token"]).claims
    assert claims["client_id"] == key_client.client_id == claims["sub"]


def test_private_key_jwt_accepts_the_issuer_as_audience(client, key_client):
    assertion = key_client.assertion(aud=key_client.issuer)
    assert _cc(client, **key_client.form(assertion)).status_code == 200


def test_assertion_is_accepted_once(client, key_client):
    assertion = key_client.assertion()
    assert _cc(client, **key_client.form(assertion)).status_code == 200
    _invalid_client(_cc(client, **key_client.form(assertion)))


def test_assertion_is_spent_even_when_the_request_fails(app, factory, live_server):
    """Seen in production conditions: the request's transaction is rolled back on error
    (and introspection never commits), so the jti must be recorded on its own."""
    key = ECKey.generate_key("P-256", private=True, parameters={"kid": "k"})
    key_client = KeyClient(app, factory, key, "ES256")
    base = live_server.url.replace("localhost", "127.0.0.1")
    assertion = key_client.assertion()
    failed = requests.post(f"{base}/oauth/token", timeout=10, data=key_client.form(
        assertion, grant_type="authorization_code", code="bogus", redirect_uri="x"))
    assert failed.json()["error"] == "invalid_grant"  # authenticated, then refused
    replay = requests.post(f"{base}/oauth/token", timeout=10,
                           data=key_client.form(assertion, grant_type="client_credentials"))
    assert replay.status_code in (400, 401) and replay.json()["error"] == "invalid_client"

    assertion = key_client.assertion(aud=key_client.issuer)
    first = requests.post(f"{base}/oauth/introspect", timeout=10,
                          data=key_client.form(assertion, token="x"))
    assert first.status_code == 200
    again = requests.post(f"{base}/oauth/introspect", timeout=10,
                          data=key_client.form(assertion, token="x"))
    assert again.json()["error"] == "invalid_client"


@pytest.mark.parametrize("claims", [
    {"aud": "https://someone-else.example.com/token"},
    {"aud": None},
    {"exp": None},
    {"exp": 1},
    {"iss": "someone-else"},
    {"sub": None},
    {"sub": 12},
    {"jti": None},
    {"nbf": 4_000_000_000},
], ids=lambda c: next(iter(c)) + "=" + str(next(iter(c.values()))))
def test_bad_assertion_claims_are_invalid_client(client, key_client, claims):
    _invalid_client(_cc(client, **key_client.form(key_client.assertion(**claims))))


def test_assertion_signed_by_another_key_is_invalid_client(client, key_client):
    other = ECKey.generate_key("P-256", private=True, parameters={"kid": key_client.key.kid})
    forged = key_client.assertion(key=other, header={"alg": "ES256", "kid": key_client.key.kid})
    _invalid_client(_cc(client, **key_client.form(forged)))


def test_unsigned_assertion_is_invalid_client(client, key_client):
    import base64
    import json

    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    unsigned = ".".join([part({"alg": "none"}), part({
        "iss": key_client.client_id, "sub": key_client.client_id, "jti": "j",
        "aud": f"{key_client.issuer}/oauth/token", "exp": now + 60}), ""])
    _invalid_client(_cc(client, **key_client.form(unsigned)))


@pytest.mark.parametrize("assertion", ["not-a-jwt", "a.b.c", "..", "é.é.é", "x" * 10_000,
                                       "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOjF9.AAAA"])
def test_malformed_assertion_is_invalid_client(client, key_client, assertion):
    _invalid_client(_cc(client, **key_client.form(assertion)))


def test_wrong_assertion_type_is_invalid_client(client, key_client):
    form = key_client.form(key_client.assertion())
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    _invalid_client(_cc(client, **form))


def test_secret_client_cannot_use_an_assertion(client, factory, rp):
    # A client registered for a secret cannot switch to keys it never registered.
    key = ECKey.generate_key("P-256", private=True, parameters={"kid": "k"})
    now = int(time.time())
    assertion = jwt.encode({"alg": "ES256", "kid": "k"}, {
        "iss": rp.client_id, "sub": rp.client_id, "jti": "j1", "exp": now + 60,
        "aud": f"{client.application.config['IDP_ISSUER']}/oauth/token"}, key)
    _invalid_client(_cc(client, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion))


# --- registration from the command line ------------------------------------------------


@pytest.mark.parametrize("args, methods", [
    ([], ["client_secret_basic", "client_secret_post"]),
    (["--auth-method", "client_secret_basic"], ["client_secret_basic"]),
    (["--auth-method", "client_secret_post"], ["client_secret_post"]),
    (["--public"], ["none"]),
])
def test_client_create_pins_a_method_only_when_asked(app, ctx, args, methods):
    from idp.models import Client

    result = app.test_cli_runner().invoke(args=[
        "idp", "client", "create", "--name", "Portal", "--redirect-uri",
        "https://portal.example.com/cb", *args, "--json"])
    assert result.exit_code == 0, result.output
    client_id = json.loads(result.output.strip().splitlines()[-1])["client_id"]
    assert db.session.query(Client).filter_by(client_id=client_id).one() \
        .token_endpoint_auth_methods == methods


@pytest.mark.parametrize("args", [["--auth-method", "client_secret_jwt"],
                                  ["--auth-method", "none"],
                                  ["--public", "--auth-method", "client_secret_post"]])
def test_client_create_refuses_a_bad_auth_method(app, ctx, args):
    result = app.test_cli_runner().invoke(args=[
        "idp", "client", "create", "--name", "Portal", "--redirect-uri",
        "https://portal.example.com/cb", *args])
    assert result.exit_code == 2
    assert "auth method" in result.output


def test_the_demo_client_takes_its_secret_either_way(app, ctx, client):
    result = app.test_cli_runner().invoke(args=["idp", "init", "--demo"])
    assert result.exit_code == 0, result.output
    creds = json.loads((Path(app.config["INSTANCE_DIR"]) / "demo_client.json").read_text())
    assert _cc(client, basic_auth(creds["client_id"], creds["client_secret"])).status_code == 200
    assert _cc(client, client_id=creds["client_id"],
               client_secret=creds["client_secret"]).status_code == 200
