"""The ID token and the values echoed to the client (OIDC Core 2, 3.1.2.5, 3.1.3.7)."""

from __future__ import annotations

import time

import pytest

from tests.http.helpers import decode
from tests.support import Driver, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

ODD_VALUES = [
    "plain",
    "été ☃ 𝄞 漢字",
    "a b+c%20d&e=f;g/h?i#j",
    "'\"<script>alert(1)</script>",
    "~!@$^*()[]{}|\\`",
    "x" * 2000,
    "  leading and trailing  ",
]


@pytest.mark.parametrize("state", ODD_VALUES)
def test_state_is_echoed_byte_for_byte(driver, rp, state):
    result = driver.code_flow(rp, state=state)
    assert result["state"] == state


@pytest.mark.parametrize("state", ODD_VALUES[:4])
def test_state_is_echoed_on_errors_too(client, driver, rp, state):
    response = driver.authorize(rp, state=state, prompt="none", code_challenge="a" * 43,
                                code_challenge_method="S256")
    params = query_of(response.headers["Location"])
    assert params["error"] == "login_required" and params["state"] == state


@pytest.mark.parametrize("nonce", ODD_VALUES)
def test_nonce_is_echoed_byte_for_byte(client, driver, rp, nonce):
    tokens = driver.tokens(rp, nonce=nonce)
    assert decode(client, tokens["id_token"]).claims["nonce"] == nonce


def test_no_nonce_still_works_in_the_code_flow(client, driver, rp):
    tokens = driver.tokens(rp, nonce=None)
    assert "nonce" not in decode(client, tokens["id_token"]).claims


def test_no_state_still_works_and_none_comes_back(driver, rp):
    result = driver.code_flow(rp, state=None)
    assert "state" not in result and result["code"]


def test_required_claims(app, client, driver, rp):
    before = int(time.time())
    tokens = driver.tokens(rp)
    token = decode(client, tokens["id_token"])
    claims = token.claims
    assert token.header["alg"] in ("RS256", "ES256")
    assert claims["iss"] == app.config["IDP_ISSUER"]
    assert claims["aud"] == rp.client_id
    assert before - 1 <= claims["iat"] <= int(time.time()) + 1
    assert claims["exp"] > claims["iat"]
    assert before - 1 <= claims["auth_time"] <= claims["iat"]
    assert claims["at_hash"]


def test_sub_is_stable_and_opaque(app, client, factory, driver, rp, alice):
    first = decode(client, driver.tokens(rp)["id_token"]).claims["sub"]
    other_browser = Driver(app, app.test_client())
    second = decode(client, other_browser.tokens(rp)["id_token"]).claims["sub"]
    assert first == second
    assert alice.email not in first and str(alice.id) != first and len(first) >= 16
    other = factory.client()
    assert decode(client, driver.tokens(other)["id_token"]).claims["sub"] == first


def test_auth_time_when_max_age_is_sent(client, driver, rp):
    claims = decode(client, driver.tokens(rp, max_age="3600")["id_token"]).claims
    assert isinstance(claims["auth_time"], int)


def test_id_token_is_never_unsigned(client, factory, driver, alice):
    for alg in ("RS256", "ES256"):
        rp = factory.client(id_token_alg=alg)
        id_token = driver.tokens(rp)["id_token"]
        header = decode(client, id_token).header
        assert header["alg"] == alg and id_token.split(".")[2]


def test_unknown_id_token_alg_cannot_be_registered(factory, alice):
    from idp.services.clients import ClientError

    with pytest.raises(ClientError):
        factory.client(id_token_alg="none")
    with pytest.raises(ClientError):
        factory.client(id_token_alg="HS256")
