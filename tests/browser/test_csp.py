"""The hosted pages under their real Content-Security-Policy (the other tests bypass it
to inject axe): nothing is refused, and form_post's nonce'd script submits the form."""

from __future__ import annotations

import pytest

from tests.browser.pages import desktop_only, query_of, sign_in

pytestmark = pytest.mark.browser


@desktop_only
def test_form_post_login_under_the_real_csp(make_page, live_server, factory, make_rp):
    factory.user()
    rp = make_rp()
    page = make_page(bypass_csp=False)
    problems = []
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text or "Refused to" in msg.text else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    auth = rp.authorization(live_server.url, response_mode="form_post")
    response = page.goto(auth.url)
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self' 'nonce-" in csp and "'unsafe-inline'" not in csp, csp
    assert page.evaluate("() => getComputedStyle(document.querySelector('.primary'))"
                         ".backgroundColor") == "rgb(11, 77, 187)"  # the stylesheet loaded

    sign_in(page)
    page.wait_for_url(rp.redirect_uri)  # no query: the code came in a POST body
    assert page.locator("#method").inner_text() == "POST"
    received = query_of("?" + page.locator("#query").inner_text())
    assert received["state"] == auth.state and received["code"]
    assert received["iss"] == live_server.url
    assert not problems, problems
