"""Helpers for the account lifecycle tests: the outbox, links in emails, forms and their errors."""

from __future__ import annotations

import hashlib
import html as html_lib
import re
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from idp.extensions import db
from tests.support import csrf_of

GOOD_PASSWORD = "Tulip-Orbit-47!"
OTHER_PASSWORD = "Quartz-Harbor-83?"



def weak_password_cases(contains_email: str) -> list[tuple[str, str]]:
    """(password, the one rule it breaks) for the default policy; the last contains the email."""
    return [
        ("Sh0rt!a", "At least 8 characters"),
        ("lowercase-only-9!", "At least 1 uppercase letter"),
        ("UPPERCASE-ONLY-9!", "At least 1 lowercase letter"),
        ("No-Digits-Here!", "At least 1 number"),
        ("NoSymbols12345", "At least 1 symbol, such as ! ? # or -"),
        ("Password1!", "Not a commonly used password"),
        (contains_email, "Does not contain your email address"),
    ]


URL_RE = re.compile(r"https?://[^\s<>\"')]+")
_ERROR_BLOCK = re.compile(r'<div class="error" role="alert" id="password-error">(.*?)</div>', re.S)
_VOLATILE = [re.compile(r'name="csrf_token" value="[^"]*"'), re.compile(r'nonce="[^"]*"')]


def outbox(kind: str | None = None, to: str | None = None) -> list:
    from idp.models import OutboxMessage

    db.session.expire_all()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind is not None:
        query = query.where(OutboxMessage.template == kind)
    if to is not None:
        query = query.where(OutboxMessage.to_address == to.lower())
    return list(db.session.scalars(query))


def links_of(message) -> list[str]:
    return URL_RE.findall(message.text_body)


def link_in(message, path: str) -> str:
    for url in links_of(message):
        if urlsplit(url).path == path:
            return url
    raise AssertionError(f"no {path} link in:\n{message.text_body}")


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def local(url: str) -> str:
    """The path and query of an absolute link, for the test client."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def password_errors(page_html: str) -> list[str]:
    """The rule labels listed in the set-password error block (empty when none)."""
    match = _ERROR_BLOCK.search(page_html)
    if not match:
        return []
    return [html_lib.unescape(item.strip())
            for item in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def normalized(page_html: str) -> str:
    """The page without what differs on every response (CSRF token, CSP nonce)."""
    for pattern in _VOLATILE:
        page_html = pattern.sub("", page_html)
    return page_html


def fresh_request_state() -> None:
    """Tests hold an app context, which every test-client request then shares, so ``g``
    outlives a request: Flask-WTF's cached CSRF token would be handed to a second
    browser (another test client), Flask-Babel's cached locale to the next request.
    Real requests each get their own ``g``; call this between requests to match."""
    from flask import g, has_app_context

    if has_app_context():
        g.pop("csrf_token", None)
        g.pop("_flask_babel", None)


def submit(client, url: str, data: dict, *, csrf: bool = True, **kwargs):
    """GET the page for its CSRF token, then POST the form (like a browser)."""
    fresh_request_state()
    page = client.get(url, **kwargs)
    form = dict(data)
    if csrf:
        form["csrf_token"] = csrf_of(page.text)
    fresh_request_state()
    return client.post(url, data=form, **kwargs)


def new_password_form(password: str, confirm: str | None = None) -> dict:
    return {"new_password": password, "confirm_password": password if confirm is None else confirm}


def signed_in_email(client) -> str | None:
    """Who the IdP's home page says is signed in, if anyone."""
    match = re.search(r"Signed in as ([^<]+)<", client.get("/").text)
    return html_lib.unescape(match.group(1)).strip() if match else None




REDIS_URL = "redis://127.0.0.1:6379/0"


class PrefixedCounter:
    """A counter whose keys carry a per-test prefix, so tests never share Redis keys."""

    def __init__(self, inner, prefix: str):
        self.inner = inner
        self.prefix = prefix

    def hit(self, key: str, limit: int, window: int, now: float | None = None):
        return self.inner.hit(self.prefix + key, limit, window, now=now)

    def reset(self, key: str, window: int) -> None:
        self.inner.reset(self.prefix + key, window)


def redis_nodes(count: int = 2):
    """`count` independent Redis counters (one per simulated node) sharing one test prefix.

    Skips with the reason when no Redis answers on 127.0.0.1:6379. Returns the
    counters and a cleanup function deleting only this test's keys.
    """
    import secrets

    import pytest

    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no Redis here
        pytest.skip(f"Redis does not answer on 127.0.0.1:6379 ({type(exc).__name__}); "
                    "the database counter is tested instead")
    from idp.services.throttle import RedisCounter

    prefix = f"test-{secrets.token_hex(6)}:"
    nodes = [PrefixedCounter(RedisCounter(REDIS_URL), prefix) for _ in range(count)]

    def cleanup() -> None:
        client = nodes[0].inner.redis
        for key in client.scan_iter(match=f"idp:rl:{prefix}*"):
            client.delete(key)

    return nodes, cleanup


def timed_post(client, url: str, data: dict, **kwargs) -> float:
    """Seconds until the answer of one POST is ready, in-process (no network, no server).

    The response is closed afterwards, outside the measure: that is when a server
    runs the work deferred until after the response (services/deferred.py).
    """
    import time

    fresh_request_state()
    started = time.perf_counter()
    response = client.post(url, data=data, buffered=False, **kwargs)
    body = response.get_data()
    elapsed = time.perf_counter() - started
    response.close()
    assert response.status_code < 500 and body, response.status_code
    return elapsed


def interleaved_medians(cases: dict, rounds: int, warmup: int = 5) -> dict[str, float]:
    """Per case (a callable returning its seconds), the median over ``rounds`` rounds of
    its time relative to its round's mean (1.0: average; no unit, so load cancels out).

    Rounds interleave the cases, each round in another order, so a load spike on a
    shared CI machine hits every case of the round alike, and comparing within a
    round cancels slower drifts; the first ``warmup`` rounds are dropped; the garbage
    collector runs between samples, never inside one.
    """
    import gc
    import statistics

    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.disable()  # collections triggered by one case's garbage would land in another's time
    try:
        for round_ in range(warmup + rounds):
            order = names if round_ % 2 else names[::-1]
            times = {}
            for name in order:
                gc.collect()
                times[name] = cases[name](round_)
            if round_ >= warmup:
                mean = statistics.fmean(times.values())
                for name, elapsed in times.items():
                    samples[name].append(elapsed / mean)
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def within(medians: dict[str, float], tolerance: float) -> bool:
    """The slowest case is at most ``tolerance`` (0.25: 25%) above the fastest."""
    return max(medians.values()) <= min(medians.values()) * (1 + tolerance)
