"""``claims_locales`` (OIDC Core 5.2): ``org_name`` in the asked language when the tenant
has a name for it (``idp tenant update --display-name fr=...``), in the ID token, the
access token, userinfo and after a refresh; otherwise the tenant's name."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.services.locale import claims_locales, localised_name
from idp.services.tenants import get_by_slug
from tests.http.helpers import bearer, decode

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")


@pytest.fixture
def rp(factory, alice):
    acme = get_by_slug("acme")
    acme.settings = {**(acme.settings or {}), "brand_names": {"fr": "Acme Flotte"}}
    db.session.commit()
    return factory.client(tenant=acme)


def _tokens(driver, rp, **params) -> dict:
    answer = driver.exchange(rp, driver.code_flow(rp, **params))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def _refresh(driver, rp, refresh_token) -> dict:
    answer = driver.token(rp, grant_type="refresh_token", refresh_token=refresh_token)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_org_name_in_the_asked_language_everywhere(client, driver, rp):
    tokens = _tokens(driver, rp, claims_locales="fr-CA en")
    assert decode(client, tokens["id_token"]).claims["org_name"] == "Acme Flotte"
    assert decode(client, tokens["access_token"]).claims["org_name"] == "Acme Flotte"
    info = client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert info["org_name"] == "Acme Flotte"
    again = _refresh(driver, rp, tokens["refresh_token"])
    assert decode(client, again["access_token"]).claims["org_name"] == "Acme Flotte"


def test_without_claims_locales_or_a_name_for_it_the_tenant_name(client, driver, rp):
    for params in ({}, {"claims_locales": "de"}, {"claims_locales": "x" * 500}):
        tokens = _tokens(driver, rp, **params)
        assert decode(client, tokens["id_token"]).claims["org_name"] == "Acme", params
        again = _refresh(driver, rp, tokens["refresh_token"])
        assert decode(client, again["access_token"]).claims["org_name"] == "Acme"


def test_the_parsing_keeps_language_tags_only():
    assert claims_locales("fr-CA  en <script>") == "fr en"
    assert claims_locales("") is None and claims_locales(None) is None
    assert len(claims_locales(" ".join(["abcdefgh"] * 50))) <= 100
    assert localised_name({"brand_names": {"fr": "Acme Flotte"}}, "Acme", "de fr") == "Acme Flotte"
    assert localised_name({"brand_names": {"fr": " "}}, "Acme", "fr") == "Acme"
    assert localised_name(None, "Acme", ["fr"]) == "Acme"
