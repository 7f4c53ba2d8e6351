"""Redirect URI rules: exact matching (RFC 9700 4.1.3) with the loopback port exception
(RFC 8252 7.3), and what may be registered at all."""

from __future__ import annotations

import pytest

from idp.oauth.redirects import InvalidRedirectURI, redirect_uri_matches, validate_redirect_uri


@pytest.mark.parametrize("registered,requested", [
    ("https://app/cb", "https://app/cb"),
    ("https://app.example.com/cb?tenant=1", "https://app.example.com/cb?tenant=1"),
    ("http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb"),
    ("com.example.app:/oauth", "com.example.app:/oauth"),
])
@pytest.mark.parametrize("native", [False, True])
def test_matches(registered, requested, native):
    assert redirect_uri_matches(registered, requested, native=native)


LOOPBACK_PORTS = [
    ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"),
    ("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"),
    ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9/cb"),
    ("http://[::1]/cb", "http://[::1]:6000/cb"),
    ("http://127.0.0.1:8080/cb?x=1", "http://127.0.0.1:1/cb?x=1"),
]


@pytest.mark.parametrize("registered,requested", LOOPBACK_PORTS)
def test_a_native_app_may_use_any_loopback_port(registered, requested):
    # RFC 8252 7.3: the app listens on whatever port the system gives it.
    assert redirect_uri_matches(registered, requested, native=True)


@pytest.mark.parametrize("registered,requested", LOOPBACK_PORTS)
def test_a_web_client_matches_its_loopback_uri_exactly(registered, requested):
    # The any-port rule is for native (public) clients; a web client's port is fixed.
    assert not redirect_uri_matches(registered, requested)


@pytest.mark.parametrize("registered,requested", [
    ("https://app/cb", "https://app/cb/"),
    ("https://app/cb", "https://APP/cb"),
    ("https://app/cb", "https://app/CB"),
    ("https://app/cb", "https://app/cb?x=1"),
    ("https://app/cb", "https://app/cb#f"),
    ("https://app/cb", "https://app/cb/..;/x"),
    ("https://app/cb", "https://app@evil/cb"),
    ("https://app/cb", "https://app.evil/cb"),
    ("https://app/cb", "https://app:443/cb"),
    ("https://app/cb", "HTTPS://app/cb"),
    ("https://app/cb", "https://app/%63b"),
    ("https://app/cb", ""),
    ("https://app/cb", None),
    ("https://app/cb", ["https://app/cb"]),
    ("http://localhost:8080/cb", "http://localhost:8081/cb"),
    ("http://localhost:8080/cb", "http://localhost/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb/"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/other"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb?x=1"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb#f"),
    ("http://127.0.0.1/cb", "https://127.0.0.1:1/cb"),
    ("http://127.0.0.1/cb", "http://[::1]:1/cb"),
    ("http://127.0.0.1/cb", "http://localhost:1/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1.evil.com/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1@evil.com/cb"),
    ("http://127.0.0.1/cb", "http://evil.com@127.0.0.1:1/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:x/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.1:70000/cb"),
    ("http://127.0.0.1/cb", "http://127.0.0.01:1/cb"),
    ("http://127.0.0.1/cb", "http://2130706433:1/cb"),
    ("https://127.0.0.1/cb", "https://127.0.0.1:8443/cb"),  # only http loopback varies
])
@pytest.mark.parametrize("native", [False, True])
def test_does_not_match(registered, requested, native):
    assert not redirect_uri_matches(registered, requested, native=native)


@pytest.mark.parametrize("uri,public", [
    ("https://app.example.com/cb", False),
    ("https://app.example.com/cb?tenant=1", False),
    ("http://127.0.0.1/cb", False),
    ("http://127.0.0.1:8080/cb", True),
    ("http://[::1]:8080/cb", True),
    ("http://localhost:8080/callback", False),
    ("com.example.app:/oauth2redirect", True),
])
def test_may_be_registered(uri, public):
    assert validate_redirect_uri(uri, public) == uri


@pytest.mark.parametrize("uri,public", [
    ("javascript:alert(1)", False),
    ("JavaScript:alert(1)", True),
    ("JAVASCRIPT://app.example.com/%0aalert(1)", True),
    ("data:text/html,<script>alert(1)</script>", False),
    ("DATA:text/html;base64,PHNjcmlwdD4=", True),
    ("dAtA:,x", True),
    ("vbscript:msgbox", True),
    ("file:///etc/passwd", True),
    ("https://app.example.com/cb#frag", False),
    ("https://app.example.com/cb#", False),
    ("https://*.example.com/cb", False),
    ("https://app.example.com/*", False),
    ("http://app.example.com/cb", False),
    ("http://app.example.com/cb", True),
    ("http://127.0.0.1.nip.io/cb", False),
    ("http://10.0.0.1/cb", False),
    ("https://user@app.example.com/cb", False),
    ("https://app.example.com@evil.example.com/cb", False),
    ("https://app.example.com/cb/../admin", False),
    ("https://app.example.com/cb/..;/admin", False),
    ("https:///cb", False),
    ("https://app.example.com/c b", False),
    (" https://app.example.com/cb", False),
    ("https://app.example.com/cb\n", False),
    ("", False),
    ("https://app.example.com/" + "x" * 2100, False),
    ("/relative/cb", False),
    ("myapp:/cb", True),  # custom schemes are reverse domain names
    ("com.example.app:/cb", False),  # ...and only for native (public) clients
])
def test_may_not_be_registered(uri, public):
    with pytest.raises(InvalidRedirectURI):
        validate_redirect_uri(uri, public)


@pytest.mark.parametrize("field,value", [
    ("redirect_uris", ["javascript:alert(1)"]),
    ("redirect_uris", ["Data:text/html,x"]),
    ("redirect_uris", ["https://app.example.com/cb#f"]),
    ("redirect_uris", ["https://*.example.com/cb"]),
    ("redirect_uris", ["http://app.example.com/cb"]),
    ("post_logout_redirect_uris", ["javascript:alert(1)"]),
    ("post_logout_redirect_uris", ["http://app.example.com/bye"]),
    ("post_logout_redirect_uris", ["https://app.example.com/bye#x"]),
    ("backchannel_logout_uri", "http://app.example.com/logout"),
    ("backchannel_logout_uri", "https://app.example.com/logout#x"),
])
def test_create_client_refuses(ctx, field, value):
    from idp.extensions import db
    from idp.services.clients import ClientError, create_client

    kwargs = {"redirect_uris": ["https://app.example.com/cb"]}
    if field == "redirect_uris":
        kwargs["redirect_uris"] = value
    else:
        kwargs[field] = value
    redirect_uris = kwargs.pop("redirect_uris")
    with pytest.raises(ClientError):
        create_client("Portal", redirect_uris, **kwargs)
    db.session.rollback()


def test_create_client_keeps_uris_unchanged(ctx):
    from idp.extensions import db
    from idp.services.clients import create_client

    uris = ["https://App.Example.com/Cb?b=2&a=1", "http://127.0.0.1:8080/cb"]
    registered = create_client("Portal", uris)
    assert registered.client.redirect_uris == uris
    db.session.rollback()


def test_web_client_needs_a_redirect_uri_for_the_code_grant(ctx):
    from idp.services.clients import ClientError, create_client

    with pytest.raises(ClientError):
        create_client("Portal", [])
