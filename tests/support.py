"""Test helpers: a factory for test data and a driver that walks the OIDC flow over HTTP."""

from __future__ import annotations

import base64
import contextvars
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient

from idp.extensions import db

PASSWORD = "Correct-Horse-9"
REDIRECT_URI = "https://app.example.com/cb"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGIN_CODE_RE = re.compile(r"^\s*(\d{6})\s*$", re.M)
CODE_PAGE = "/login/code"


def login_code(to: str = "alice@example.com", index: int = -1) -> str:
    """The emailed sign-in code, read from the outbox (the newest one by default)."""
    from tests.outbox import kinds, messages

    sent = messages(to, "login_code")
    assert sent, f"no login_code message to {to}: {kinds()}"
    match = LOGIN_CODE_RE.search(sent[index].text_body)
    assert match, sent[index].text_body
    return match.group(1)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def basic_auth(client_id: str, client_secret: str | None) -> dict:
    raw = f"{client_id}:{client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


class Clock:
    """Shifts ``time.time()`` process-wide for one test; ``advance`` moves it on.

    Real time keeps running (code that waits for a deadline still ends), so the clock
    starts just after a whole second: the code under test stores whole seconds, and a
    test that advances to one second before an expiry has nearly a full real second
    before ``int(time.time())`` ticks over."""

    def __init__(self, monkeypatch):
        import math
        import time

        real = time.time
        now = real()
        self.offset = math.floor(now) + 1.001 - now
        monkeypatch.setattr(time, "time", lambda: real() + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class IsolatedClient(FlaskClient):
    """Each request runs in an application context of its own, as in production.

    Flask reuses the application context a test holds open (the ``ctx`` fixture) for
    every request: ``g`` (CSP nonce, cached CSRF token) and the database session would
    then be shared across requests, which no deployment does. (So ``with client:`` does
    not keep the request context after a request; read the database instead.)

    Responses are buffered, hence closed before they are returned, as a server closes
    them after sending: the work deferred until then (services/deferred.py) has run.
    Timing tests pass ``buffered=False`` to measure the answer alone."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return contextvars.Context().run(super().open, *args, **kwargs)


@dataclass
class RegisteredClient:
    client_id: str
    client_secret: str | None
    redirect_uri: str


class Factory:
    """Creates tenants, users and clients through the service layer, committed."""

    def __init__(self, app):
        self.app = app

    def tenant(self, slug: str = "acme", name: str = "Acme"):
        from idp.services.tenants import create_tenant, get_by_slug

        tenant = get_by_slug(slug) or create_tenant(slug, name)
        db.session.commit()
        return tenant

    def user(self, email: str = "alice@example.com", password: str = PASSWORD,
             tenant=None, role: str = "member", **kwargs):
        from idp.services.accounts import create_user

        tenant = tenant if tenant is not None else self.tenant()
        user = create_user(email, password, tenant=tenant, role=role, **kwargs)
        db.session.commit()
        return user

    def client(self, redirect_uri: str = REDIRECT_URI, public: bool = False, tenant=None,
               shared: bool = False, **kwargs) -> RegisteredClient:
        """A client of `tenant` (default: acme), or of no tenant at all when `shared`."""
        from idp.services.clients import create_client

        kwargs.setdefault("grant_types", ["authorization_code", "refresh_token",
                                          *([] if public else ["client_credentials"])])
        if not shared and tenant is None:
            tenant = self.tenant()
        registered = create_client("Test portal", [redirect_uri], public=public,
                                   tenant=None if shared else tenant, **kwargs)
        db.session.commit()
        return RegisteredClient(registered.client.client_id, registered.client_secret,
                                redirect_uri)


class Driver:
    """Walks the authorization code flow the way a browser and a relying party would."""

    def __init__(self, app, client):
        self.app = app
        self.http = client

    def authorize(self, rp: RegisteredClient, **params):
        query = {"response_type": "code", "client_id": rp.client_id,
                 "redirect_uri": rp.redirect_uri, "scope": "openid profile email",
                 "state": "st-" + secrets.token_hex(4), "nonce": "n-" + secrets.token_hex(4)}
        query.update(params)
        query = {k: v for k, v in query.items() if v is not None}
        return self.http.get("/oauth/authorize", query_string=query)

    def login(self, response, email: str = "alice@example.com", password: str = PASSWORD):
        """From a redirect to the login page: fill the form and follow to the client."""
        assert response.status_code in (302, 303), response.status_code
        login_url = response.headers["Location"]
        page = self.http.get(login_url)
        assert page.status_code == 200
        return self.http.post(login_url, data={"email": email, "password": password,
                                               "csrf_token": csrf_of(page.text)})

    def sign_in(self, email: str = "alice@example.com", password: str = PASSWORD):
        """Log in on the IdP's own login page, outside any authorization flow."""
        page = self.http.get("/login")
        response = self.http.post("/login", data={"email": email, "password": password,
                                                  "csrf_token": csrf_of(page.text)})
        assert response.status_code == 303, response.status_code
        return response

    def answer_code(self, response, email: str = "alice@example.com", code: str | None = None):
        """From a redirect to the code page: type the emailed code (or ``code``)."""
        assert response.status_code in (302, 303), response.status_code
        page_url = response.headers["Location"]
        assert page_url.startswith(CODE_PAGE), page_url
        page = self.http.get(page_url)
        assert page.status_code == 200
        return self.http.post(page_url, data={"code": code or login_code(email),
                                              "csrf_token": csrf_of(page.text)})

    def follow(self, response):
        """Follow redirects that stay on the IdP; stop at the client's redirect URI."""
        while response.status_code in (302, 303) and response.headers["Location"].startswith("/"):
            response = self.http.get(response.headers["Location"])
        return response

    def code_flow(self, rp: RegisteredClient, email: str = "alice@example.com",
                  password: str = PASSWORD, **params) -> dict:
        """Authorize, log in, return the callback parameters (code, state, iss)."""
        verifier, challenge = pkce_pair()
        params.setdefault("code_challenge", challenge)
        params.setdefault("code_challenge_method", "S256")
        response = self.authorize(rp, **params)
        if response.headers.get("Location", "").startswith("/login"):
            response = self.login(response, email, password)
        if response.headers.get("Location", "").startswith(CODE_PAGE):
            response = self.answer_code(response, email)  # the tenant's policy asks it
        response = self.follow(response)
        assert response.status_code in (302, 303), response.text[:500]
        result = query_of(response.headers["Location"])
        result["_verifier"] = verifier
        result["_location"] = response.headers["Location"]
        return result

    def token(self, rp: RegisteredClient, auth: str = "basic", **form):
        headers = {}
        if auth == "basic" and rp.client_secret:
            raw = f"{rp.client_id}:{rp.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        elif auth == "post":
            form.setdefault("client_id", rp.client_id)
            form.setdefault("client_secret", rp.client_secret)
        elif auth == "none":
            form.setdefault("client_id", rp.client_id)
        return self.http.post("/oauth/token", data=form, headers=headers)

    def exchange(self, rp: RegisteredClient, result: dict, **extra):
        form = {"grant_type": "authorization_code", "code": result["code"],
                "redirect_uri": rp.redirect_uri, "code_verifier": result["_verifier"]}
        form.update(extra)
        form = {k: v for k, v in form.items() if v is not None}
        return self.token(rp, auth="none" if rp.client_secret is None else "basic", **form)

    def tokens(self, rp: RegisteredClient, **params) -> dict:
        response = self.exchange(rp, self.code_flow(rp, **params))
        assert response.status_code == 200, response.get_json()
        return response.get_json()
