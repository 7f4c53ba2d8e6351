"""The authorization code flow end to end over HTTP, and what the tokens say."""

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import PASSWORD


def _jwks(client):
    return KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())


def test_code_flow_issues_verifiable_tokens(app, client, factory, driver):
    factory.user()
    rp = factory.client()
    result = driver.code_flow(rp, nonce="abc-123", state="xyz")
    assert result["state"] == "xyz"
    assert result["iss"] == app.config["IDP_ISSUER"]
    response = driver.exchange(rp, result)
    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    id_token = jwt.decode(body["id_token"], _jwks(client))
    assert id_token.header["alg"] == "RS256"
    claims = id_token.claims
    assert claims["iss"] == app.config["IDP_ISSUER"]
    assert claims["aud"] == rp.client_id and claims["azp"] == rp.client_id
    assert claims["nonce"] == "abc-123"
    for name in ("sub", "iat", "exp", "auth_time", "at_hash", "sid", "amr", "acr"):
        assert name in claims, name
    assert claims["amr"] == ["pwd"]
    assert claims["org_slug"] == "acme" and claims["org_role"] == "member"
    assert "@" not in claims["sub"]
    access = jwt.decode(body["access_token"], _jwks(client))
    assert access.header["typ"] == "at+jwt" and access.header["alg"] == "ES256"
    assert access.claims["client_id"] == rp.client_id
    assert access.claims["sub"] == claims["sub"]


def test_userinfo_by_header_and_body(client, factory, driver):
    factory.user(given_name="Alice", family_name="Martin")
    rp = factory.client()
    tokens = driver.tokens(rp)
    by_header = client.get("/oauth/userinfo",
                           headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert by_header.status_code == 200
    info = by_header.get_json()
    assert info["email"] == "alice@example.com" and info["name"] == "Alice Martin"
    by_body = client.post("/oauth/userinfo", data={"access_token": tokens["access_token"]})
    assert by_body.get_json() == info
    assert client.get("/oauth/userinfo").status_code == 401


def test_wrong_password_never_reaches_the_client(client, factory, driver):
    factory.user()
    rp = factory.client()
    response = driver.authorize(rp, code_challenge="a" * 43, code_challenge_method="S256")
    failed = driver.login(response, password=PASSWORD + "x")
    assert failed.status_code == 400
    assert "Incorrect email address or password" in failed.text
