"""One email validator (services/email_address.py) behind every way an address is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import User
from idp.services import accounts, company_signup, email_address, email_change, invitations
from idp.services import registration as reg
from tests.lifecycle import GOOD_PASSWORD

# Refused at registration; several of them passed the old "plausible" check of invitations.
BAD = ["bob@[192.0.2.1]", "josé@example.fr", ".bob@example.com", "bob.@example.com",
       "bob@example.123", "bob@-example.com", "b" * 65 + "@example.com", "a@b@example.com",
       "bob@example", '"b b"@example.com', "bob@example.com\r\nBcc: x@y.z", ""]


@pytest.fixture
def acme(factory):
    tenant = factory.tenant("acme", "Acme")
    tenant.self_registration = True
    db.session.commit()
    return tenant


def users() -> int:
    return db.session.scalar(select(func.count(User.id)))


@pytest.mark.parametrize("address", BAD)
def test_an_invitation_refuses_what_registration_refuses(acme, address):
    with pytest.raises(reg.RegistrationError) as refused:
        reg.check_form(acme, address, GOOD_PASSWORD, GOOD_PASSWORD)
    assert "email" in refused.value.errors
    before = users()
    with pytest.raises(accounts.AccountError):
        invitations.invite_user(acme, address)
    with pytest.raises(accounts.AccountError):
        accounts.create_user(address, GOOD_PASSWORD, tenant=acme)  # the CLI's way in
    with pytest.raises(company_signup.SignupError):
        company_signup.check_email(address, address)
    db.session.rollback()
    assert users() == before
    assert not email_address.is_valid(address)


@pytest.mark.parametrize("address", BAD)
def test_an_email_change_refuses_it_too(factory, address):
    user = factory.user("carol@example.com")
    with pytest.raises(email_change.EmailChangeError):
        email_change.request_change(user, address)


def test_every_path_stores_the_same_form(acme):
    user = accounts.create_user(" Jose@EXÄMPLE.fr ", GOOD_PASSWORD, tenant=acme)
    assert user.email == email_address.normalize("jose@exämple.fr") == "jose@xn--exmple-cua.fr"
    invited = invitations.invite_user(acme, "Dana@Exämple.fr")
    assert invited.user.email == "dana@xn--exmple-cua.fr"
