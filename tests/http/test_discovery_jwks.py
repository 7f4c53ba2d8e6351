"""Discovery (OIDC Discovery 1.0, RFC 8414) and the JWKS: what relying parties trust."""

from __future__ import annotations

import pytest
from joserfc.jwk import KeySet

from tests.http.helpers import decode

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


def test_discovery_describes_this_server(app, client):
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200 and response.mimetype == "application/json"
    config = response.get_json()
    issuer = app.config["IDP_ISSUER"]
    assert config["issuer"] == issuer
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert config[name].startswith(issuer + "/"), name
        path = config[name][len(issuer):]
        assert client.options(path).status_code != 404, path


def test_discovery_advertises_only_what_is_safe(client):
    config = client.get("/.well-known/openid-configuration").get_json()
    assert config["response_types_supported"] == ["code"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert set(config["grant_types_supported"]) <= {"authorization_code", "refresh_token",
                                                    "client_credentials"}
    assert "none" not in config["id_token_signing_alg_values_supported"]
    assert "none" not in config["token_endpoint_auth_signing_alg_values_supported"]
    assert config["authorization_response_iss_parameter_supported"] is True
    assert config["request_parameter_supported"] is False
    assert config["request_uri_parameter_supported"] is False
    assert "none" not in config["introspection_endpoint_auth_methods_supported"]
    assert config["backchannel_logout_supported"] is True
    assert config["backchannel_logout_session_supported"] is True


def test_jwks_publishes_public_keys_only(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "public" in response.headers["Cache-Control"]
    keys = response.get_json()["keys"]
    assert keys
    kids = [key["kid"] for key in keys]
    assert len(kids) == len(set(kids))
    for key in keys:
        assert not PRIVATE_MEMBERS & set(key), key["kid"]
        assert key["use"] == "sig" and key["alg"] in ("RS256", "ES256")
    KeySet.import_key_set({"keys": keys})  # every key parses


def test_tokens_are_signed_by_published_keys(client, driver, rp):
    tokens = driver.tokens(rp)
    published = {key["kid"] for key in client.get("/.well-known/jwks.json").get_json()["keys"]}
    for name in ("id_token", "access_token"):
        token = decode(client, tokens[name])
        assert token.header["kid"] in published
        assert token.header["alg"] != "none"


def test_id_token_alg_follows_the_client(client, factory, driver, alice):
    rp = factory.client(id_token_alg="ES256")
    token = decode(client, driver.tokens(rp)["id_token"])
    assert token.header["alg"] == "ES256"


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/jwks.json"])
def test_documents_have_an_etag_and_answer_304(client, path):
    first = client.get(path)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"')
    again = client.get(path)
    assert again.data == first.data and again.headers["ETag"] == etag
    assert "public" in again.headers["Cache-Control"] and "max-age" in again.headers["Cache-Control"]
    assert again.headers["X-Content-Type-Options"] == "nosniff"
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = client.get(path, headers={"If-None-Match": header})
        assert cached.status_code == 304 and cached.data == b"", header
        assert cached.headers["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head(path)
    assert head.status_code == 200 and head.data == b"" and head.headers["ETag"] == etag
    assert client.post(path).status_code == 405


def test_jwks_etag_changes_with_a_rotation(app, client, tmp_path, monkeypatch):
    from idp.oauth import keys as keys_module
    from idp.oauth.keys import KeyStore, ensure_keys, rotate_keys

    directory = tmp_path / "keys"
    ensure_keys(directory)
    monkeypatch.setitem(app.extensions, "idp_keys", KeyStore(directory))
    monkeypatch.setattr(keys_module, "RELOAD_CHECK_SECONDS", 0.0)
    before = client.get("/.well-known/jwks.json")
    rotate_keys(directory, retain_seconds=3600)
    after = client.get("/.well-known/jwks.json", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert len(after.get_json()["keys"]) > len(before.get_json()["keys"])
