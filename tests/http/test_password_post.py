"""The password sign-in POST (issue 10): a one-factor sign-in commits the password step
and its completion in one transaction, with the person loaded once, and still writes
every record it wrote before: both audit entries, the account counter's reset, a new
browser-session row under a new id. The steps that stop before DONE (the company, a
second factor) still commit the password step themselves."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, func, select

from idp.extensions import db
from idp.models import AuditEvent, BrowserSession, Membership, RateLimitCounter
from idp.services.accounts import failure_key
from idp.services.sessions import COOKIE_NAME
from tests.lifecycle import fresh_request_state
from tests.support import PASSWORD, csrf_of

EMAIL = "alice@example.com"
IP = "192.0.2.44"


def _post(client, password: str, path: str = "/login"):
    fresh_request_state()
    page = client.get(path, environ_base={"REMOTE_ADDR": IP})
    fresh_request_state()
    before = client.get_cookie(COOKIE_NAME)
    response = client.post(path, data={"email": EMAIL, "password": password,
                                       "csrf_token": csrf_of(page.text)},
                           environ_base={"REMOTE_ADDR": IP})
    return response, before.value if before else None


@contextmanager
def _counted():
    """The statements and commits the app sends meanwhile."""
    seen: dict = {"statements": [], "commits": 0}

    def statement(conn, cursor, text, *args):
        seen["statements"].append(" ".join(text.split()))

    def commit(conn):
        seen["commits"] += 1
        seen["statements"].append("COMMIT")

    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        event.remove(db.engine, "commit", commit)


def _events_after(last_id: int) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.id > last_id)
                                   .order_by(AuditEvent.id)))


def _last_audit_id() -> int:
    return db.session.scalar(select(func.max(AuditEvent.id))) or 0


def _account_counter_rows(user_id: int) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(RateLimitCounter).where(
        RateLimitCounter.key == failure_key(user_id)))


def test_a_one_factor_sign_in_keeps_every_record_in_one_commit(client, alice):
    for _ in range(2):
        assert _post(client, "wrong")[0].status_code == 400
    assert _account_counter_rows(alice.id) == 1  # the failures are counted
    last = _last_audit_id()
    sessions_before = db.session.scalar(select(func.count()).select_from(BrowserSession))

    with _counted() as seen:
        response, old_cookie = _post(client, PASSWORD)

    assert response.status_code == 303 and response.headers["Location"] == "/"
    # Session fixation: the signed-in session has a new id, in a new row of its own.
    new_cookie = client.get_cookie(COOKIE_NAME).value
    assert new_cookie and new_cookie != old_cookie and "." not in new_cookie
    db.session.expire_all()
    rows = list(db.session.scalars(select(BrowserSession).where(
        BrowserSession.user_id == alice.id)))
    assert len(rows) == 1 and rows[0].data["uid"] == alice.id
    assert db.session.scalar(select(func.count()).select_from(BrowserSession)) \
        == sessions_before + 1
    # The same audit entries as before, in the same order, with the same content.
    events = _events_after(last)
    assert [(e.event, e.user_id, e.ip, e.data) for e in events] == [
        ("login_factor", alice.id, IP, {"factor": "password"}),
        ("login", alice.id, IP, {"amr": ["pwd"]})]
    assert _account_counter_rows(alice.id) == 0  # a success forgets the failures
    db.session.refresh(alice)
    assert alice.last_login_at is not None
    # The fast path: the person is read once, and the password step's audit entry is
    # committed with the sign-in's own (no commit between them; the counters have
    # transactions of their own).
    statements = seen["statements"]
    user_reads = [s for s in statements if s.startswith("SELECT users.")]
    assert len(user_reads) == 1, user_reads
    audits = [i for i, s in enumerate(statements) if s.startswith("INSERT INTO audit_events")]
    assert len(audits) == 2, statements
    assert "COMMIT" not in statements[audits[0]:audits[1]], statements
    # ... and with the new session row: one commit for all three.
    [row] = [i for i, s in enumerate(statements) if s.startswith("INSERT INTO browser_sessions")]
    first, last = min(audits[0], row), max(audits[1], row)
    assert "COMMIT" not in statements[first:last], statements
    assert "COMMIT" in statements[last:], statements
    # And it is a signed-in session.
    fresh_request_state()
    assert client.get("/account").status_code == 200


def test_the_lockout_still_counts_through_the_sign_in_post(client, alice, app):
    threshold = app.config["IDP_LOCKOUT_THRESHOLD"]
    for _ in range(threshold - 1):
        _post(client, "wrong")
    assert _post(client, PASSWORD)[0].status_code == 303  # resets the count
    for _ in range(threshold):
        assert _post(client, "wrong")[0].status_code == 400
    db.session.refresh(alice)
    assert alice.locked_until is not None
    response, _old = _post(client, PASSWORD)
    assert response.status_code == 400  # locked: the right password is refused


def test_a_second_factor_step_still_commits_the_password_step(client, alice, required):
    last = _last_audit_id()
    response, _old = _post(client, PASSWORD)
    assert response.status_code == 303 and "/login/code" in response.headers["Location"]
    # Read after the request's own session is gone: only what it committed is there.
    events = [(e.event, e.data) for e in _events_after(last)]
    assert events == [("login_factor", {"factor": "password"})]
    assert not db.session.scalar(select(func.count()).select_from(BrowserSession).where(
        BrowserSession.user_id == alice.id))  # not signed in yet


def test_the_company_step_still_commits_the_password_step(client, driver, factory, alice):
    beta = factory.tenant("beta", "Beta Logistics")
    db.session.add(Membership(user_id=alice.id, tenant_id=beta.id, role="member"))
    db.session.commit()
    shared = factory.client(shared=True)
    last = _last_audit_id()
    answer = driver.login(driver.authorize(shared))
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/login/select-tenant")
    assert [e.event for e in _events_after(last)] == ["login_factor"]


def test_a_hash_with_other_parameters_is_replaced_at_sign_in(client, factory):
    """Rehash on a parameter change: committed with the one-commit sign-in too."""
    from argon2 import PasswordHasher, Type, extract_parameters

    from idp.factors import password_hash

    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
    user = factory.user(password=None, password_hash=old.hash(PASSWORD))
    assert password_hash.needs_rehash(user.password_hash)
    response, _old = _post(client, PASSWORD)
    assert response.status_code == 303
    db.session.expire_all()
    db.session.refresh(user)
    assert not password_hash.needs_rehash(user.password_hash)
    assert extract_parameters(user.password_hash) == extract_parameters(
        password_hash.HASHER.hash("x"))
    assert password_hash.verify_password(user.password_hash, PASSWORD)
