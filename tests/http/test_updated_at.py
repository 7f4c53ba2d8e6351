"""OIDC's ``updated_at``: the time the person's own information last changed. A sign-in,
a lockout or a new password is not that (models/accounts.py ``_profile_changed``)."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import User
from idp.models.accounts import PROFILE_COLUMNS

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

OLD = 1_000


def _alice() -> User:
    return db.session.query(User).filter_by(email="alice@example.com").one()


def test_a_sign_in_leaves_updated_at_alone(app, ctx, driver, rp):
    user = _alice()
    user.updated_at = OLD
    db.session.commit()
    driver.tokens(rp, scope="openid profile")  # the password step: last_login_at moves
    db.session.expire_all()
    user = _alice()
    assert user.last_login_at is not None and user.updated_at == OLD


def test_bookkeeping_leaves_it_alone_and_each_profile_column_moves_it(app, ctx, alice):
    user = _alice()
    user.updated_at = OLD
    db.session.commit()
    user.last_login_at, user.lockouts, user.locked_until = 5_000, 2, 6_000
    user.password_hash, user.active = user.password_hash + "x", False
    db.session.commit()
    assert user.updated_at == OLD
    changed = {"email": "alice2@example.com", "email_verified": not user.email_verified,
               "given_name": "Alicia", "family_name": "Liddell", "locale": "fr",
               "phone_number": "+33123456789",
               "phone_number_verified": not user.phone_number_verified}
    assert set(changed) == set(PROFILE_COLUMNS)
    for name, value in changed.items():
        user.updated_at = OLD
        db.session.commit()
        setattr(user, name, value)
        db.session.commit()
        assert user.updated_at > OLD, name


def test_a_value_the_caller_sets_is_kept(app, ctx, alice):
    user = _alice()
    user.given_name, user.updated_at = "Alicia", 4_242
    db.session.commit()
    assert user.updated_at == 4_242
