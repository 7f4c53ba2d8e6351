"""Redirect URIs are matched as exact strings (RFC 9700 4.1); only a loopback IP's port
may vary, for a native (public) app (RFC 8252 7.3). Anything else is a 400 page: the IdP never redirects to an
unregistered address, whatever the error."""

from __future__ import annotations

import pytest

from tests.http.helpers import assert_error_page
from tests.support import pkce_pair, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

REGISTERED = "https://app/cb"
VARIANTS = [
    "https://app/cb/",
    "https://APP/cb",
    "https://app/CB",
    "https://app/cb?x=1",
    "https://app/cb#f",
    "https://app/cb/..;/x",
    "https://app@evil/cb",
    "https://app.evil/cb",
    "https://app/cb/../cb",
    "https://app/%63b",
    "https://app:443/cb",
    "http://app/cb",
    "https://app/cb ",
    " https://app/cb",
    "https://app/cb%00",
    "https://app@@evil/cb",
    "https://evil/cb?https://app/cb",
    "//app/cb",
    "https:app/cb",
]


def _authorize(client, client_id, redirect_uri, **extra):
    _, challenge = pkce_pair()
    return client.get("/oauth/authorize", query_string={
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": "openid", "state": "s", "code_challenge": challenge,
        "code_challenge_method": "S256", **extra})


@pytest.fixture
def registered(factory, alice):
    return factory.client(redirect_uri=REGISTERED)


def test_the_registered_uri_itself_is_accepted(client, registered):
    response = _authorize(client, registered.client_id, REGISTERED)
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_is_refused_with_a_page(client, registered, variant):
    assert_error_page(_authorize(client, registered.client_id, variant))


@pytest.mark.parametrize("variant", VARIANTS[:8])
def test_variant_is_refused_even_with_another_error_pending(client, registered, variant):
    # An error that would otherwise be redirected must not be, to an unregistered URI.
    response = _authorize(client, registered.client_id, variant, response_type="token",
                          scope="openid nope")
    assert_error_page(response)


def test_unknown_client_is_a_page_even_with_a_good_uri(client, registered):
    assert_error_page(_authorize(client, "someone-else", REGISTERED))


def test_uri_of_another_client_is_refused(client, factory, registered):
    other = factory.client(redirect_uri="https://other.example.com/cb")
    assert_error_page(_authorize(client, registered.client_id, other.redirect_uri))


@pytest.mark.parametrize("port", ["", ":1", ":8080", ":49152", ":65535"])
def test_loopback_ip_accepts_any_port(client, native, port):
    response = _authorize(client, native.client_id, f"http://127.0.0.1{port}/cb")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("registered,other_port", [
    ("http://127.0.0.1:8080/callback", "http://127.0.0.1:9999/callback"),
    ("http://127.0.0.1:8080/callback", "http://127.0.0.1/callback"),
    ("http://127.0.0.1/callback", "http://127.0.0.1:9999/callback"),
    ("http://[::1]:8080/callback", "http://[::1]:9999/callback"),
])
def test_web_client_loopback_uri_matches_exactly(client, factory, alice, registered,
                                                  other_port):
    # A confidential web client (the demo acme-portal) got codes on any port: the any-port
    # rule is for native apps only, whose port the system picks at run time.
    web = factory.client(redirect_uri=registered)
    assert _authorize(client, web.client_id, registered).status_code == 303
    assert_error_page(_authorize(client, web.client_id, other_port))


@pytest.mark.parametrize("variant", [
    "http://127.0.0.1:8080/cb/",
    "http://127.0.0.1:8080/CB",
    "http://127.0.0.1:8080/cb?x=1",
    "http://127.0.0.1:8080/cb#f",
    "https://127.0.0.1:8080/cb",
    "http://localhost:8080/cb",
    "http://[::1]:8080/cb",
    "http://127.0.0.2:8080/cb",
    "http://127.0.0.1.evil.com/cb",
    "http://127.0.0.1:8080@evil.com/cb",
    "http://evil.com@127.0.0.1:8080/cb",
    "http://127.0.0.1:80abc/cb",
    "http://127.0.0.1:99999/cb",
    "http://127.0.0.1:-1/cb",
    "http://127.0.0.1:8080\\@evil.com/cb",
    "http://127.0.0.1:8080/cb/..;/x",
])
def test_loopback_only_the_port_may_differ(client, native, variant):
    assert_error_page(_authorize(client, native.client_id, variant))


@pytest.mark.parametrize("variant", [
    "http://localhost:9999/cb",
    "http://localhost/cb",
    "http://localhost:1234.evil.com/cb",
    "http://localhost:1234@evil.com/cb",
    "http://localhost.evil.com:1234/cb",
    "http://127.0.0.1:1234/cb",
])
def test_registered_localhost_is_not_an_open_redirect(client, factory, alice, variant):
    # Keycloak CVE-2024-8883: a registered localhost URI let any port (or host) through.
    app = factory.client(redirect_uri="http://localhost:1234/cb", public=True)
    assert _authorize(client, app.client_id, "http://localhost:1234/cb").status_code == 303
    assert_error_page(_authorize(client, app.client_id, variant))


def test_loopback_code_is_bound_to_the_port_it_was_sent_to(client, driver, native):
    native.redirect_uri = "http://127.0.0.1:53127/cb"
    result = driver.code_flow(native, scope="openid")
    assert result["_location"].startswith("http://127.0.0.1:53127/cb?")
    other_port = driver.exchange(native, result, redirect_uri="http://127.0.0.1:53128/cb")
    assert other_port.status_code == 400
    assert other_port.get_json()["error"] == "invalid_grant"
    same_port = driver.exchange(native, result)
    assert same_port.status_code == 200, same_port.get_json()


def test_response_goes_to_the_exact_registered_uri(client, driver, factory, alice):
    with_query = factory.client(redirect_uri="https://app.example.com/cb?tenant=1")
    result = driver.code_flow(with_query)
    assert result["_location"].startswith("https://app.example.com/cb?tenant=1&")
    assert query_of(result["_location"])["tenant"] == "1"
