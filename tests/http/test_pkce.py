"""PKCE, strict: S256 only, stated explicitly, required of public clients, and no
downgrade (RFC 7636 as profiled by RFC 9700 2.1.1). Authlib's defaults are looser:
these tests pin our override."""

from __future__ import annotations

import pytest

from tests.http.helpers import assert_error_redirect
from tests.support import pkce_pair

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


def _start(client, rp, **params):
    query = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
             "scope": "openid", "state": "pk"}
    query.update(params)
    return client.get("/oauth/authorize", query_string={k: v for k, v in query.items()
                                                       if v is not None})


def test_discovery_advertises_s256_only(client):
    config = client.get("/.well-known/openid-configuration").get_json()
    assert config["code_challenge_methods_supported"] == ["S256"]


def test_public_client_without_challenge_is_invalid_request(app, client, native):
    response = _start(client, native)
    assert_error_redirect(response, native.redirect_uri, "invalid_request", state="pk",
                          issuer=app.config["IDP_ISSUER"])


@pytest.mark.parametrize("method", ["plain", None, "", "s256", "S512"])
def test_only_an_explicit_s256_is_accepted(app, client, native, method):
    verifier, _ = pkce_pair()
    response = _start(client, native, code_challenge=verifier, code_challenge_method=method)
    assert_error_redirect(response, native.redirect_uri, "invalid_request", state="pk",
                          issuer=app.config["IDP_ISSUER"])


@pytest.mark.parametrize("challenge", ["", "short", "a" * 129, "a" * 42 + "!", "a" * 42 + "é"])
def test_malformed_challenge_is_invalid_request(client, native, challenge):
    response = _start(client, native, code_challenge=challenge, code_challenge_method="S256")
    assert_error_redirect(response, native.redirect_uri, "invalid_request", state="pk")


def test_method_without_challenge_is_invalid_request(client, rp):
    response = _start(client, rp, code_challenge_method="S256")
    assert_error_redirect(response, rp.redirect_uri, "invalid_request", state="pk")


def test_public_client_with_s256_gets_tokens(driver, native):
    result = driver.code_flow(native, scope="openid")
    response = driver.exchange(native, result)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("verifier", [None, "", "wrong-" + "a" * 50, "a" * 42, "a" * 129,
                                      "é" * 50])
def test_wrong_or_missing_verifier_is_invalid_grant(driver, native, verifier):
    result = driver.code_flow(native, scope="openid")
    response = driver.exchange(native, result, code_verifier=verifier)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_verifier_of_another_authorization_is_invalid_grant(driver, native):
    first = driver.code_flow(native, scope="openid")
    second = driver.code_flow(native, scope="openid")
    response = driver.exchange(native, first, code_verifier=second["_verifier"])
    assert response.get_json()["error"] == "invalid_grant"


def test_confidential_client_may_skip_pkce(driver, rp):
    result = driver.code_flow(rp, code_challenge=None, code_challenge_method=None)
    response = driver.exchange(rp, result, code_verifier=None)
    assert response.status_code == 200, response.get_json()


def test_verifier_for_a_code_issued_without_challenge_is_a_downgrade(driver, rp):
    result = driver.code_flow(rp, code_challenge=None, code_challenge_method=None)
    response = driver.exchange(rp, result)  # sends a code_verifier
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_confidential_client_that_used_pkce_must_send_the_verifier(driver, rp):
    result = driver.code_flow(rp)
    response = driver.exchange(rp, result, code_verifier=None)
    assert response.get_json()["error"] == "invalid_grant"
