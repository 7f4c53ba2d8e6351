"""The demo portal of `make run` (demo/), driven like a person: sign in, refresh, sign out."""

from __future__ import annotations

import re
import socket
import threading

import pytest
from werkzeug.serving import make_server

from demo import create_app
from idp.extensions import db
from idp.factors.assurance import REQUIRED, set_mfa_policy
from tests.browser.pages import (
    LONG_EMAIL,
    assert_focus_visible,
    assert_page_ok,
    focused,
    sign_in,
)
from tests.smtp import text_of

pytestmark = pytest.mark.browser


@pytest.fixture
def portal(factory, live_server):
    """The demo portal on its own random port, registered as a client of acme."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://localhost:{port}"
    client = factory.client(redirect_uri=f"{base}/callback",
                            post_logout_redirect_uris=[f"{base}/"],
                            backchannel_logout_uri=f"{base}/backchannel-logout")
    app = create_app({"DEMO_ISSUER": live_server.url, "DEMO_BASE_URL": base,
                      "DEMO_CLIENT_ID": client.client_id,
                      "DEMO_CLIENT_SECRET": client.client_secret})
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    server.server_close()


def test_sign_in_refresh_and_sign_out_through_the_demo_portal(page, live_server, person,
                                                               portal, app, smtp, factory):
    # The demo tenant's policy (`idp init --demo`): the emailed code after the password.
    tenant = factory.tenant()
    set_mfa_policy(tenant, REQUIRED)
    db.session.commit()
    page.goto(f"{portal}/")
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("heading", name="Demo portal").wait_for()
    page.get_by_text("None received yet.").wait_for()
    assert_page_ok(page, "demo portal, signed out")
    page.keyboard.press("Tab")  # the provider's link in the header, then the button
    assert_focus_visible(page, background=(0x16, 0x32, 0x4F))
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Sign in"
    assert_focus_visible(page)

    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/login?flow=**")
    sign_in(page, LONG_EMAIL, button="Receive Code")
    page.get_by_role("heading", name="Enter your code").wait_for()
    code = re.search(r"^\s*(\d{6})\s*$", text_of(smtp.wait_for(app, LONG_EMAIL)), re.M)
    page.get_by_label("Sign-in code", exact=True).fill(code.group(1))
    page.get_by_role("button", name="Login", exact=True).click()

    page.wait_for_url(f"{portal}/")
    page.get_by_role("heading", name=f"Signed in as {LONG_EMAIL}").wait_for()
    assert page.locator("#email").inner_text() == LONG_EMAIL
    assert page.locator("#name").inner_text() == "Alexandrina Whitfield"
    assert page.locator("#org-slug").inner_text() == "acme"
    assert page.locator("#amr").inner_text() == "pwd, otp, mfa"
    claims = dict(
        (row.locator("th").inner_text(), row.locator("td").inner_text())
        for row in page.locator("#claims tbody tr").all())
    assert claims["iss"] == live_server.url
    assert claims["org_slug"] == "acme"
    assert claims["email"] == LONG_EMAIL
    assert {"sub", "aud", "exp", "iat", "nonce", "sid", "amr"} <= set(claims)
    assert f'"email": "{LONG_EMAIL}"' in page.locator("#userinfo").inner_text()
    assert f'"sub": "{claims["sub"]}"' in page.locator("#userinfo").inner_text()
    assert_page_ok(page, "demo portal, signed in")

    page.get_by_role("button", name="Refresh tokens", exact=True).click()
    page.get_by_role("status").filter(has_text="Tokens refreshed").wait_for()
    page.get_by_role("heading", name=f"Signed in as {LONG_EMAIL}").wait_for()
    assert_page_ok(page, "demo portal, tokens refreshed")

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_role("status").filter(has_text="You are signed out.").wait_for()
    assert page.url == f"{portal}/"
    assert page.get_by_role("button", name="Sign in", exact=True).is_visible()
    received = page.locator("#backchannel").inner_text()
    assert received.startswith("Last received")
    assert f"sid {claims['sid']}" in received and f"sub {claims['sub']}" in received
    assert_page_ok(page, "demo portal, signed out after sign-out")

    # The IdP session ended too: signing in again asks for the password.
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/login?flow=**")
