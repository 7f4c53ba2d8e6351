"""Memberships from the command line (issue 9): `idp user create` for an existing account,
`idp user remove`, `idp tenant update --disable/--enable`, `idp client create --shared-with`;
and the services they are thin over."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.flows import tenant_pick
from idp.models import Client, ClientTenant, Grant, Membership, Tenant, User
from idp.services import clients, memberships
from idp.services.tenants import get_by_slug
from tests.support import PASSWORD

EMAIL = "bob@example.com"


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def bob(factory):
    factory.tenant("beta", "Beta")
    return factory.user(EMAIL)  # a member of acme, with a password


def _run(runner, *args):
    return runner.invoke(args=["idp", *args])


def _memberships(user_id: int) -> dict:
    rows = db.session.execute(select(Tenant.slug, Membership.role).join(
        Membership, Membership.tenant_id == Tenant.id).where(Membership.user_id == user_id))
    return dict(rows.all())


def test_user_create_for_an_existing_account_adds_the_membership(app, ctx, runner, bob):
    before = bob.password_hash
    result = _run(runner, "user", "create", "--tenant", "beta", "--email", "Bob@Example.com",
                  "--role", "admin")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    assert printed["email"] == EMAIL and printed["tenant"] == "beta" and printed["role"] == "admin"
    db.session.expire_all()
    assert _memberships(bob.id) == {"acme": "member", "beta": "admin"}
    assert db.session.get(User, bob.id).password_hash == before
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize("extra", [["--password", "An0ther-Passw0rd!"], ["--invite"]])
def test_credentials_for_an_existing_account_are_refused(app, ctx, runner, bob, extra):
    before = bob.password_hash
    result = _run(runner, "user", "create", "--tenant", "beta", "--email", EMAIL, *extra)
    assert result.exit_code == 2
    assert "already has an account" in result.output
    db.session.expire_all()
    assert _memberships(bob.id) == {"acme": "member"}, "nothing changed"
    assert db.session.get(User, bob.id).password_hash == before


def test_an_existing_membership_is_said_so(app, ctx, runner, bob):
    result = _run(runner, "user", "create", "--tenant", "acme", "--email", EMAIL)
    assert result.exit_code == 2 and "already a member of acme" in result.output


def test_a_bad_role_for_an_existing_account_is_refused(app, ctx, runner, bob):
    result = _run(runner, "user", "create", "--tenant", "beta", "--email", EMAIL,
                  "--role", "owner")
    assert result.exit_code == 2 and "role must be one of" in result.output
    db.session.expire_all()
    assert _memberships(bob.id) == {"acme": "member"}


def test_a_new_address_still_needs_a_password(app, ctx, runner, bob):
    result = _run(runner, "user", "create", "--tenant", "beta", "--email", "new@example.com")
    assert result.exit_code == 2 and "--password is required" in result.output


def _grant(user_id: int, tenant_id: int, client_id: str) -> Grant:
    now = int(time.time())
    grant = Grant(client_id=client_id, user_id=user_id, tenant_id=tenant_id,
                  redirect_uri="https://app.example.com/cb", auth_time=now, created_at=now,
                  code_expires_at=now + 60)
    db.session.add(grant)
    db.session.commit()
    return grant


def test_user_remove_ends_the_membership_and_that_tenants_grants(app, ctx, runner, factory,
                                                                 bob):
    beta = get_by_slug("beta")
    memberships.add(bob, beta, "member")
    db.session.commit()
    rp = factory.client(shared=True)
    in_beta, in_acme = _grant(bob.id, beta.id, rp.client_id), _grant(
        bob.id, get_by_slug("acme").id, rp.client_id)
    result = _run(runner, "user", "remove", "--tenant", "beta", "--email", EMAIL)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["revoked_grants"] == 1
    db.session.expire_all()
    assert _memberships(bob.id) == {"acme": "member"}
    assert db.session.get(Grant, in_beta.id).revoked_at is not None
    assert db.session.get(Grant, in_acme.id).revoked_at is None, "other tenants untouched"
    assert db.session.get(User, bob.id) is not None, "the account stays"
    again = _run(runner, "user", "remove", "--tenant", "beta", "--email", EMAIL)
    assert again.exit_code == 2 and "not a member of beta" in again.output


@pytest.mark.parametrize("args, message", [
    (["--tenant", "nope", "--email", EMAIL], "no tenant"),
    (["--tenant", "beta", "--email", "nobody@example.com"], "not a member"),
])
def test_user_remove_bad_arguments(app, ctx, runner, bob, args, message):
    result = _run(runner, "user", "remove", *args)
    assert result.exit_code == 2 and message in result.output


def test_tenant_disable_and_enable(app, ctx, runner, bob):
    result = _run(runner, "tenant", "update", "beta", "--disable")
    assert result.exit_code == 0 and json.loads(result.output)["active"] is False
    db.session.expire_all()
    assert get_by_slug("beta").active is False
    assert memberships.binding_valid(bob.id, get_by_slug("acme").id)
    result = _run(runner, "tenant", "update", "beta", "--enable")
    assert json.loads(result.output)["active"] is True


def test_client_create_owned_shared_and_shared_with(app, ctx, runner, bob):
    def create(*args):
        result = _run(runner, "client", "create", "--name", "P", "--redirect-uri",
                      "https://p.example.com/cb", "--json", *args)
        assert result.exit_code == 0, result.output
        client_id = json.loads(result.output.strip().splitlines()[-1])["client_id"]
        return db.session.query(Client).filter_by(client_id=client_id).one()

    owned, everyone, listed = create("--tenant", "beta"), create("--shared"), create(
        "--shared-with", "acme,beta")
    assert owned.tenant_id == get_by_slug("beta").id and clients.shared_with(owned) == []
    assert everyone.tenant_id is None and clients.shared_with(everyone) == []
    assert listed.tenant_id is None
    assert clients.shared_with(listed) == sorted([get_by_slug("acme").id,
                                                      get_by_slug("beta").id])


@pytest.mark.parametrize("args, message", [
    (["--tenant", "beta", "--shared"], "choose one of"),
    (["--shared", "--shared-with", "beta"], "choose one of"),
    (["--shared-with", "beta,nope"], "no tenant 'nope'"),
    (["--shared-with", ","], "at least one"),
])
def test_client_create_bad_sharing(app, ctx, runner, bob, args, message):
    result = _run(runner, "client", "create", "--name", "P", "--redirect-uri",
                  "https://p.example.com/cb", *args)
    assert result.exit_code == 2 and message in result.output
    assert db.session.scalar(select(func.count()).select_from(ClientTenant)) == 0


# --- the services and the rule ---------------------------------------------------------------


def test_served_memberships_follow_the_client(app, ctx, factory, bob):
    acme, beta = get_by_slug("acme"), get_by_slug("beta")
    memberships.add(bob, beta, "admin")
    shared = db.session.query(Client).filter_by(
        client_id=factory.client(shared=True).client_id).one()
    owned = db.session.query(Client).filter_by(client_id=factory.client(tenant=beta).client_id
                                               ).one()
    slugs = lambda client: [m.tenant.slug for m in memberships.served_memberships(bob, client)]  # noqa: E731
    assert slugs(shared) == ["acme", "beta"] and slugs(owned) == ["beta"]
    clients.share_with(shared, [acme])
    assert slugs(shared) == ["acme"]
    memberships.set_active(acme, False)
    assert slugs(shared) == [] and slugs(None) == ["beta"]
    with pytest.raises(clients.ClientError):
        clients.share_with(owned, [acme])


def test_binding_valid(app, ctx, bob):
    acme = get_by_slug("acme")
    assert memberships.binding_valid(bob.id, acme.id)
    assert memberships.binding_valid(bob.id, None) and memberships.binding_valid(None, acme.id)
    assert not memberships.binding_valid(bob.id, get_by_slug("beta").id)
    memberships.set_active(acme, False)
    assert not memberships.binding_valid(bob.id, acme.id)


class _M:
    def __init__(self, tenant_id, slug):
        self.tenant_id, self.tenant = tenant_id, type("T", (), {"slug": slug})()


def test_the_tenant_rule():
    a, b = _M(1, "a"), _M(2, "b")
    assert tenant_pick.decide([]).membership is None and not tenant_pick.decide([]).pick
    assert tenant_pick.decide([a]).membership is a
    assert tenant_pick.decide([a], select_account=True).pick
    assert tenant_pick.decide([a, b]).pick
    assert tenant_pick.decide([a, b], organization="b").membership is b
    assert tenant_pick.decide([a, b], organization="b", select_account=True).membership is b
    assert tenant_pick.decide([a, b], organization="zzz").pick, "unknown slug: the picker"
    assert tenant_pick.decide([a, b], in_use=2).membership is b
    assert tenant_pick.decide([a, b], in_use=2, select_account=True).pick
    assert tenant_pick.chosen([a, b], "2") is b
    for bad in ("3", "", None, "x", "2.0", " ", "²", "1" * 30, "-1"):
        with pytest.raises(tenant_pick.InvalidChoice):
            tenant_pick.chosen([a, b], bad)


def test_the_password_is_never_set_on_an_existing_account(app, ctx, bob):
    with pytest.raises(memberships.ExistingAccount):
        memberships.add_existing_account(get_by_slug("beta"), EMAIL, password=PASSWORD)
    assert _memberships(bob.id) == {"acme": "member"}
