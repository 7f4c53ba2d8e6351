"""Helpers for the browser tests: the relying party, typing like a person, page checks."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.support import PASSWORD, RegisteredClient, pkce_pair

AXE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21aa"]
AXE_URL: str | None = None  # set by the rp_server fixture, which serves it cacheably
# A long address with no hyphen to break at: pages that show it must still fit a phone.
LONG_EMAIL = "alexandrina.montgomerywhitfield@examplecorporation.com"

# Tests that check pages run at both sizes (the `viewport` fixture); tests of behaviour
# whose pages are checked elsewhere run at one size, to keep the suite quick.
desktop_only = pytest.mark.parametrize("viewport", ["desktop"], indirect=True)
phone_only = pytest.mark.parametrize("viewport", ["mobile"], indirect=True)


@dataclass
class Authorization:
    url: str
    state: str
    nonce: str
    verifier: str


@dataclass
class RelyingParty:
    """A registered client whose redirect URIs point at the local echo server."""

    client: RegisteredClient
    base: str

    @property
    def client_id(self) -> str:
        return self.client.client_id

    @property
    def redirect_uri(self) -> str:
        return self.client.redirect_uri

    @property
    def post_logout_uri(self) -> str:
        return f"{self.base}/signed-out"

    def authorization(self, issuer: str, **params) -> Authorization:
        verifier, challenge = pkce_pair()
        query = {"response_type": "code", "client_id": self.client_id,
                 "redirect_uri": self.redirect_uri, "scope": "openid profile email",
                 "state": "st-" + secrets.token_hex(6), "nonce": "n-" + secrets.token_hex(6),
                 "code_challenge": challenge, "code_challenge_method": "S256"}
        query.update(params)
        return Authorization(f"{issuer}/oauth/authorize?{urlencode(query)}", query["state"],
                             query["nonce"], verifier)

    def is_callback(self, url: str) -> bool:
        return url.startswith(self.redirect_uri + "?")

    def is_signed_out_page(self, url: str) -> bool:
        return url.startswith(self.post_logout_uri)

    def exchange(self, http, code: str, verifier: str) -> dict:
        """Redeem a code at the token endpoint (Flask test client); the decoded ID token."""
        raw = f"{self.client_id}:{self.client.client_secret}".encode()
        response = http.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
            "code_verifier": verifier},
            headers={"Authorization": "Basic " + base64.b64encode(raw).decode()})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        body["id_token_claims"] = unverified_claims(body["id_token"])
        return body


def unverified_claims(jwt: str) -> dict:
    """The payload of a JWT; signatures are checked by the HTTP and interop suites."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# ----------------------------------------------------------------------------- a person


def sign_in(page, email: str = "alice@example.com", password: str = PASSWORD, *,
            email_label: str = "Email address", password_label: str = "Password",
            button: str = "Sign in") -> None:
    """Type into the labelled fields and press the button, like a person."""
    page.get_by_label(email_label, exact=True).fill(email)
    page.get_by_label(password_label, exact=True).fill(password)
    page.get_by_role("button", name=button, exact=True).click()


def callback_query(page, rp: RelyingParty) -> dict:
    """Wait until the browser is back at the relying party; the query it received."""
    page.wait_for_url(rp.is_callback)
    received = query_of("?" + page.locator("#query").inner_text())
    assert received == query_of(page.url)
    return received


def focused(page) -> dict:
    # Chromium applies `autofocus` at its next rendering update, not at load: wait two
    # animation frames so the answer does not depend on how fast the page was read.
    return page.evaluate("""async () => {
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        const el = document.activeElement;
        return {tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name'),
                type: el.getAttribute('type'), cls: el.className,
                text: (el.innerText || '').trim()};
    }""")


def _luminance(rgb: tuple[int, ...]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """WCAG contrast ratio of two sRGB colours."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def assert_focus_visible(page, background: tuple[int, int, int] = (255, 255, 255)) -> None:
    """The focused element has an outline of at least 2px and 3:1 against the background
    (WCAG 2.4.7 and 1.4.11); axe cannot check focus indicators."""
    style = page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return {style: s.outlineStyle, width: parseFloat(s.outlineWidth),
                color: s.outlineColor, html: document.activeElement.outerHTML.slice(0, 80)};
    }""")
    assert style["style"] not in ("none", "hidden") and style["width"] >= 2, style
    rgb = tuple(int(float(v)) for v in
                style["color"][style["color"].index("(") + 1:-1].split(",")[:3])
    ratio = contrast(rgb, background)
    assert ratio >= 3, f"focus outline {style['color']} is {ratio:.2f}:1 on {background}: {style}"


# ----------------------------------------------------------------------------- page checks


def format_violations(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation.get('impact')}): {violation['help']}")
        lines.append(f"  {violation['helpUrl']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:160]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n         ")
            lines.append(f"       {summary}")
    return "\n".join(lines)


def axe_scan(page) -> list[dict]:
    """axe-core's WCAG 2.0 A/AA and 2.1 AA violations on the current page."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # The page's CSP would refuse either way: scan contexts bypass it.
        if AXE_URL:
            page.add_script_tag(url=AXE_URL)
        else:
            page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async (tags) => {
            const result = await window.axe.run(document, {
                runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, html: n.html,
                                           failureSummary: n.failureSummary}))}));
        }""",
        AXE_TAGS)


def assert_page_ok(page, label: str) -> None:
    """No horizontal scrolling, nothing wider than its card, and no axe violations."""
    width = page.viewport_size["width"]
    # Measured once the page's styles and fonts are in and a frame was laid out with them
    # (a loaded machine can read the width of a page that is not styled yet).
    scroll_width = page.evaluate("""async () => {
        await document.fonts.ready;
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        return document.documentElement.scrollWidth;
    }""")
    if scroll_width > width:  # name what sticks out, so the failure says where to look
        wide = page.evaluate("""(width) => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > width)
            .slice(-5).map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                             + ' ' + Math.round(el.getBoundingClientRect().right))""", width)
        raise AssertionError(f"{label}: the page scrolls sideways at {width}px "
                             f"(scrollWidth {scroll_width}): {wide}")
    overflow = page.evaluate("""() => {
        const main = document.querySelector('main');
        return main ? main.scrollWidth - main.clientWidth : 0;
    }""")
    assert overflow <= 0, f"{label}: content sticks out of its card by {overflow}px at {width}px"
    violations = axe_scan(page)
    assert not violations, (
        f"{label} at {width}px: {len(violations)} accessibility violation(s):\n"
        + format_violations(violations))
