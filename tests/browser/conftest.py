"""Browser fixtures: one Debian Chromium per session, a page with empty cookies per test.

Fixtures other browser tests build on:
  browser     Chromium (/usr/bin/chromium, headless); skips when it or axe-core is absent
              (fails instead under IDP_REQUIRE_BROWSER=1, as in CI: tests/required.py)
  viewport    "desktop" (1280x800) or "mobile" (360x740, touch): tests run at both
              unless marked pages.desktop_only / pages.phone_only
  make_page   make_page(locale=..., bypass_csp=...): a page; each call its own cookie jar
  page        make_page() in English
  rp_server   a relying party on 127.0.0.1 (random port) that answers 200 with the query
              string (GET) or form (POST) it received, so a test truly lands back with a code
  make_rp     a registered client redirecting there (shared=True: a client of no tenant)
  person, two_tenant_person   a user with a long email, in one or two tenants

Scans (pages.assert_page_ok) inject axe-core, which the pages' CSP would refuse, so
contexts bypass the CSP by default; test_csp.py runs the flow under the real CSP.
"""

from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser import pages
from tests.browser.pages import AXE, LONG_EMAIL, RelyingParty
from tests.required import missing
from tests.support import RegisteredClient

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 360, "height": 740}
TIMEOUT_MS = 10_000

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None


# ----------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser():
    if sync_playwright is None:
        missing("the playwright Python package is not installed")
    if not CHROMIUM.exists():
        missing("/usr/bin/chromium is absent: run `make chromium` (Debian's chromium package)")
    if not AXE.exists():
        missing(f"axe-core is missing ({AXE}): run `make node`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=["desktop", "mobile"])
def viewport(request) -> str:
    """Every browser test runs at a desktop size and at a 360x740 phone size."""
    return request.param


def new_context(browser, viewport: str = "desktop", locale: str = "en-US",
                bypass_csp: bool = True):
    """A browser context. It bypasses the pages' CSP unless told not to, because axe is
    injected as a script the CSP would refuse; test_csp.py runs under the real CSP."""
    context = browser.new_context(
        viewport=MOBILE if viewport == "mobile" else DESKTOP, locale=locale,
        is_mobile=viewport == "mobile", has_touch=viewport == "mobile",
        bypass_csp=bypass_csp)
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture(scope="session")
def _contexts(browser):
    """Contexts reused across tests (their HTTP cache keeps axe compiled); their cookies
    are cleared before each use, so every test starts signed out."""
    contexts: dict[tuple, object] = {}
    yield contexts
    for context in contexts.values():
        context.close()


@pytest.fixture
def make_page(_contexts, browser, viewport, live_server, rp_server):
    """make_page(locale="en-US", bypass_csp=True): a page with its own, empty cookie jar.

    Each call is a separate browser (cookies are not shared between two calls)."""
    pages, extra_contexts, used = [], [], set()

    def make(locale: str = "en-US", bypass_csp: bool = True):
        key = (viewport, locale, bypass_csp)
        if key in used:  # a second "device" in the same test
            context = new_context(browser, viewport, locale, bypass_csp)
            extra_contexts.append(context)
        else:
            used.add(key)
            if key not in _contexts:
                _contexts[key] = new_context(browser, viewport, locale, bypass_csp)
            context = _contexts[key]
            context.clear_cookies()
        page = context.new_page()
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()
    for context in extra_contexts:
        context.close()


@pytest.fixture
def page(make_page):
    return make_page()


# ----------------------------------------------------------------------------- relying party


class _CallbackHandler(BaseHTTPRequestHandler):
    """Answers 200 with what it received: the query string (GET) or the form (POST)."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/axe.min.js":
            return self._axe()
        self._echo("GET", urlsplit(self.path).query)

    def _axe(self):
        """axe-core for the scans, cacheable: Chromium then keeps it compiled."""
        body = AXE.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=86400, immutable")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - response_mode=form_post
        length = int(self.headers.get("Content-Length") or 0)
        self._echo("POST", self.rfile.read(length).decode())

    def _echo(self, method: str, received: str):
        body = (f'<!doctype html><html lang="en"><head><title>Relying party</title></head>'
                f'<body><main><h1>Back at the client</h1><p id="method">{method}</p>'
                f'<pre id="query">{html.escape(received)}</pre></main></body></html>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass


@pytest.fixture(scope="session")
def rp_server():
    """A relying party on 127.0.0.1 (random port) that echoes the query string."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CallbackHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    pages.AXE_URL = f"{base}/axe.min.js"
    yield base
    pages.AXE_URL = None
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_rp(factory, rp_server):
    """make_rp(**create_client kwargs): a client redirecting to the echo server.

    ``shared=True`` registers a client with no tenant (shared by all tenants),
    which Factory.client cannot express (it defaults the tenant).
    """

    def make(shared: bool = False, **kwargs) -> RelyingParty:
        redirect_uri = f"{rp_server}/callback"
        kwargs.setdefault("post_logout_redirect_uris", [f"{rp_server}/signed-out"])
        if shared:
            from idp.extensions import db
            from idp.services.clients import create_client

            registered = create_client("Shared portal", [redirect_uri], tenant=None,
                                       grant_types=["authorization_code", "refresh_token"],
                                       **kwargs)
            db.session.commit()
            client = RegisteredClient(registered.client.client_id, registered.client_secret,
                                      redirect_uri)
        else:
            client = factory.client(redirect_uri=redirect_uri, **kwargs)
        return RelyingParty(client, rp_server)

    return make


@pytest.fixture
def person(factory):
    """A member of acme with a long email address."""
    return factory.user(LONG_EMAIL, given_name="Alexandrina", family_name="Whitfield")


@pytest.fixture
def two_tenant_person(factory, person):
    """The same person, also a member of a second tenant."""
    from idp.extensions import db
    from idp.models import Membership

    globex = factory.tenant("globex", "Globex Corporation International Holdings")
    db.session.add(Membership(user_id=person.id, tenant_id=globex.id, role="admin"))
    db.session.commit()
    return person


@pytest.fixture
def required_rp(required, make_rp):
    """A relying party of acme, whose policy asks for a second factor."""
    return make_rp()
