"""RP-initiated logout 1.0 and back-channel logout 1.0.

The IdP redirects after logout only to a post_logout_redirect_uri registered exactly for
the client named by the hint; otherwise a page (no open redirect). Without a hint the
person confirms with a CSRF-protected form. Logging out revokes the session's online
grants, tells clients over the back channel, and leaves offline_access grants alone.
"""

from __future__ import annotations

import html
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from joserfc import jwt

from tests.http.helpers import assert_error_page, bearer, jwks
from tests.support import basic_auth, csrf_of, pkce_pair, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

BYE = "https://app.example.com/bye"


def _signed_in(client) -> bool:
    """Whether the browser still has a session: prompt=none says so without a page."""
    from idp.extensions import db
    from idp.models import Client

    some_client = db.session.scalars(db.select(Client)).first()
    _, challenge = pkce_pair()
    response = client.get("/oauth/authorize", query_string={
        "response_type": "code", "client_id": some_client.client_id, "prompt": "none",
        "redirect_uri": some_client.redirect_uris[0], "scope": "openid",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    params = query_of(response.headers["Location"])
    assert "code" in params or params["error"] == "login_required", params
    return "code" in params


def _active(client, rp, token) -> bool:
    return client.post("/oauth/introspect", data={"token": token},
                       headers=basic_auth(rp.client_id, rp.client_secret)).get_json()["active"]


def test_valid_hint_logs_out_and_redirects_with_state(client, driver, rp):
    tokens = driver.tokens(rp)
    assert _signed_in(client)
    response = client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE,
        "state": "bye é&="})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(BYE + "?")
    assert query_of(location) == {"state": "bye é&="}
    assert not _signed_in(client)
    # The session's tokens died with it.
    assert not _active(client, rp, tokens["access_token"])
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def test_post_logout_redirect_without_state(client, driver, rp):
    tokens = driver.tokens(rp)
    response = client.post("/oauth/logout", data={"id_token_hint": tokens["id_token"],
                                                  "post_logout_redirect_uri": BYE})
    assert response.status_code == 303 and response.headers["Location"] == BYE


@pytest.mark.parametrize("uri", [
    "https://evil.example.com/bye",
    BYE + "/",
    BYE + "?x=1",
    BYE.upper(),
    "https://app.example.com/cb",  # a redirect_uri, not a post-logout one
    "https://app.example.com@evil.example.com/bye",
    "javascript:alert(1)",
])
def test_unregistered_post_logout_uri_is_a_page(client, driver, rp, uri):
    tokens = driver.tokens(rp)
    response = client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri})
    assert_error_page(response)
    assert _signed_in(client), "a refused request changes nothing"


def test_uri_registered_for_another_client_is_a_page(client, factory, driver, rp):
    other = factory.client(post_logout_redirect_uris=["https://other.example.com/bye"])
    tokens = driver.tokens(rp)
    for params in ({"id_token_hint": tokens["id_token"]},
                   {"id_token_hint": tokens["id_token"], "client_id": other.client_id},
                   {"client_id": other.client_id, "id_token_hint": tokens["id_token"]}):
        response = client.get("/oauth/logout", query_string={
            **params, "post_logout_redirect_uri": "https://other.example.com/bye"})
        assert_error_page(response)


def test_post_logout_uri_without_hint_or_client_is_a_page(client, driver, rp):
    driver.tokens(rp)
    response = client.get("/oauth/logout", query_string={"post_logout_redirect_uri": BYE})
    assert_error_page(response)


def test_client_id_without_hint_asks_before_redirecting(client, driver, rp):
    driver.tokens(rp)
    response = client.get("/oauth/logout", query_string={
        "client_id": rp.client_id, "post_logout_redirect_uri": BYE, "state": "s"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/logout")
    assert _signed_in(client)
    page = client.get(response.headers["Location"])
    done = _confirm(client, page)
    assert done.status_code == 303 and done.headers["Location"] == BYE + "?state=s"
    assert not _signed_in(client)


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "x" * 9000,
                                  "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_malformed_hint_is_a_page(client, driver, rp, hint):
    driver.tokens(rp)
    assert_error_page(client.get("/oauth/logout", query_string={
        "id_token_hint": hint, "post_logout_redirect_uri": BYE}))
    assert _signed_in(client)


def _confirm(client, page, decision="logout"):
    assert page.status_code == 200
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    return client.post(action, data={"decision": decision, "csrf_token": csrf_of(page.text)})


def test_missing_hint_shows_a_confirmation_with_csrf(client, driver, rp):
    driver.tokens(rp)
    response = client.get("/oauth/logout")
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert _signed_in(client), "showing the confirmation logs nobody out"
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
    forged = client.post(action, data={"decision": "logout"})
    assert forged.status_code == 400 and _signed_in(client)
    assert _confirm(client, page).status_code == 200
    assert not _signed_in(client)


def test_stay_signed_in_keeps_the_session(client, driver, rp):
    driver.tokens(rp)
    page = client.get(client.get("/oauth/logout").headers["Location"])
    assert _confirm(client, page, "stay").status_code == 303
    assert _signed_in(client)


def test_hint_for_another_user_asks_for_confirmation(client, app, factory, driver, rp):
    from tests.support import Driver

    factory.user("bob@example.com")
    bobs = Driver(app, app.test_client()).tokens(rp, email="bob@example.com")
    driver.tokens(rp)
    response = client.get("/oauth/logout", query_string={
        "id_token_hint": bobs["id_token"], "post_logout_redirect_uri": BYE})
    assert response.status_code == 303 and response.headers["Location"].startswith("/logout")
    assert _signed_in(client)


def test_logout_without_session_still_redirects_to_a_registered_uri(client, driver, rp, app):
    from tests.support import Driver

    tokens = Driver(app, app.test_client()).tokens(rp)
    response = client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE, "state": "z"})
    assert response.status_code == 303 and response.headers["Location"] == BYE + "?state=z"


def test_online_grants_die_and_offline_grants_survive(client, driver, rp):
    online = driver.tokens(rp, scope="openid email")
    offline = driver.tokens(rp, scope="openid email offline_access")
    response = client.get("/oauth/logout", query_string={"id_token_hint": online["id_token"]})
    assert response.status_code == 200  # signed out, no redirect asked for
    assert not _active(client, rp, online["access_token"])
    assert not _active(client, rp, online["refresh_token"])
    assert _active(client, rp, offline["access_token"])
    refreshed = driver.token(rp, grant_type="refresh_token",
                             refresh_token=offline["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_json()


def test_logout_only_ends_this_browsers_grants(app, client, driver, rp):
    from tests.support import Driver

    elsewhere = Driver(app, app.test_client()).tokens(rp)
    here = driver.tokens(rp)
    client.get("/oauth/logout", query_string={"id_token_hint": here["id_token"]})
    assert _active(client, rp, elsewhere["access_token"])


def test_session_cookie_is_dead_after_logout(client, driver, rp):
    tokens = driver.tokens(rp)
    cookie = client.get_cookie("idp_session").value
    client.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    client.set_cookie("idp_session", cookie)  # an attacker kept the old cookie
    assert not _signed_in(client)


# --- back-channel logout ------------------------------------------------------------


class Receiver:
    """A relying party's back-channel logout endpoint on 127.0.0.1."""

    def __init__(self):
        received = self.received = []
        self.event = threading.Event()
        event = self.event

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                received.append({"content_type": self.headers.get("Content-Type"),
                                 "form": parse_qs(body)})
                self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                event.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def test_back_channel_logout_token(app, client, factory, driver, alice, receiver):
    rp = factory.client(backchannel_logout_uri=receiver.url,
                        post_logout_redirect_uris=[BYE])
    tokens = driver.tokens(rp)
    id_claims = jwt.decode(tokens["id_token"], jwks(client)).claims
    response = client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE})
    assert response.status_code == 303
    assert receiver.event.wait(5), "the client was not told"
    assert len(receiver.received) == 1
    request = receiver.received[0]
    assert request["content_type"].startswith("application/x-www-form-urlencoded")
    [logout_token] = request["form"]["logout_token"]

    token = jwt.decode(logout_token, jwks(client), algorithms=["RS256", "ES256"])
    assert token.header["typ"] == "logout+jwt"
    claims = token.claims
    assert claims["iss"] == app.config["IDP_ISSUER"]
    assert claims["aud"] == rp.client_id
    assert claims["sub"] == id_claims["sub"] and claims["sid"] == id_claims["sid"]
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims
    assert claims["jti"] and claims["iat"] <= claims["exp"] <= claims["iat"] + 300


def test_back_channel_reaches_only_clients_of_the_session(app, client, factory, driver, alice,
                                                          receiver):
    from tests.support import Driver

    rp = factory.client(backchannel_logout_uri=receiver.url)
    Driver(app, app.test_client()).tokens(rp)  # another browser's session
    bystander = factory.client()
    tokens = driver.tokens(bystander)
    client.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert not receiver.event.wait(0.3)
    assert receiver.received == []


def test_unreachable_back_channel_does_not_break_logout(client, factory, driver, alice):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/gone"
    rp = factory.client(backchannel_logout_uri=dead, post_logout_redirect_uris=[BYE])
    tokens = driver.tokens(rp)
    response = client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE})
    assert response.status_code == 303 and response.headers["Location"] == BYE
    assert not _signed_in(client)


def test_code_flow_after_logout_needs_a_login(client, driver, rp):
    tokens = driver.tokens(rp)
    client.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    _, challenge = pkce_pair()
    response = driver.authorize(rp, prompt="none", code_challenge=challenge,
                                code_challenge_method="S256")
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_an_access_token_is_not_an_id_token_hint(client, driver, rp):
    # Access tokens go to resource servers; one must not be able to sign the user out.
    tokens = driver.tokens(rp)
    response = client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["access_token"], "post_logout_redirect_uri": BYE})
    assert_error_page(response)
    assert _signed_in(client)
