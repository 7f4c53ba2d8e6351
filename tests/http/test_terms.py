"""The TERMS step: the latest required version, accepted once, recorded; declined, refused
or replayed answers never give a code."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import TermsAcceptance
from tests.http.helpers import assert_error_page, assert_error_redirect
from tests.support import csrf_of, pkce_pair, query_of

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

UA = "Mozilla/5.0 (terms test)"


def publish(tenant=None, name="partner-terms", version="1", client=None, platform=False,
            en="# Partner terms\n\nYou agree to *everything*.", fr="# Conditions\n\nVous acceptez."):
    from idp.services.terms import Text
    from idp.services.terms import publish as publish_version

    published = publish_version(name, version, {"en": Text(en), "fr": Text(fr)}, tenant=tenant,
                                platform=platform, client=client)
    db.session.commit()
    return published


def _client_row(rp):
    from idp.models import Client

    return db.session.query(Client).filter_by(client_id=rp.client_id).one()


def _authorize(driver, rp, **params):
    _, challenge = pkce_pair()
    params.setdefault("code_challenge", challenge)
    params.setdefault("code_challenge_method", "S256")
    return driver.authorize(rp, **params)


def _terms_page(driver, response):
    page = driver.follow(response)
    assert page.status_code == 200 and 'name="version"' in page.text, (page.status_code,
                                                                      page.text[:300])
    return page


def _form(page) -> tuple[str, str, str]:
    action = html.unescape(re.search(r'action="([^"]*/terms[^"]*)"', page.text).group(1))
    version = re.search(r'name="version" value="([^"]+)"', page.text).group(1)
    return action, version, csrf_of(page.text)


def _answer(driver, page, decision="accept", version=None, **headers):
    action, shown, csrf = _form(page)
    return driver.http.post(action, data={"decision": decision, "version": version or shown,
                                          "csrf_token": csrf},
                            headers={"User-Agent": UA, **headers})


def _is_code(response, rp) -> bool:
    return (response.status_code in (302, 303)
            and response.headers["Location"].startswith(rp.redirect_uri + "?")
            and "code" in query_of(response.headers["Location"]))


def _acceptances() -> int:
    return db.session.scalar(select(func.count()).select_from(TermsAcceptance))


@pytest.fixture
def acme(factory, alice):
    return factory.tenant()


def test_terms_are_asked_after_the_login_and_accepted_once(driver, rp, acme, alice, clock):
    version = publish(acme)
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    assert "You agree to <em>everything</em>." in page.text
    assert "<h2>Partner terms</h2>" in page.text  # the page's own <h1> is the title
    assert page.headers["Cache-Control"] == "no-store"

    accepted = _answer(driver, page)
    assert accepted.status_code == 303
    assert _is_code(driver.follow(accepted), rp)
    row = db.session.scalars(select(TermsAcceptance)).one()
    assert (row.user_id, row.version_id, row.document_id) == (alice.id, version.id,
                                                               version.document_id)
    assert row.ip == "127.0.0.1" and row.user_agent == UA
    assert abs(row.accepted_at - int(__import__("time").time())) < 5
    assert row.client_id == rp.client_id and row.tenant_id == acme.id

    # Never asked again for that version: the next authorization gives a code at once.
    clock.advance(60)
    assert _is_code(_authorize(driver, rp), rp)
    assert _acceptances() == 1


def test_a_new_version_is_asked_again(driver, rp, acme, alice):
    publish(acme, version="1")
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    assert _is_code(driver.follow(_answer(driver, page)), rp)

    second = publish(acme, version="2", en="Version **two**.")
    page = _terms_page(driver, _authorize(driver, rp))
    assert "Version <strong>two</strong>." in page.text and "(version 2)" in page.text
    assert _form(page)[1] == str(second.id)
    assert _is_code(driver.follow(_answer(driver, page)), rp)
    assert _acceptances() == 2


def test_prompt_none_with_terms_pending_is_interaction_required(app, driver, rp, acme):
    driver.sign_in()
    publish(acme)
    response = _authorize(driver, rp, prompt="none", state="pn")
    assert_error_redirect(response, rp.redirect_uri, "interaction_required", state="pn",
                          issuer=app.config["IDP_ISSUER"])
    assert _acceptances() == 0


def test_declining_is_access_denied_and_signs_nothing_in(app, driver, rp, acme):
    publish(acme)
    page = _terms_page(driver, driver.login(_authorize(driver, rp, state="dec")))
    declined = _answer(driver, page, "decline")
    params = assert_error_redirect(declined, rp.redirect_uri, "access_denied", state="dec",
                                   issuer=app.config["IDP_ISSUER"])
    assert "code" not in params
    assert _acceptances() == 0
    # The sign-in made for this authorization ended: the account page asks to sign in.
    account = driver.http.get("/account")
    assert account.status_code == 303 and account.headers["Location"].startswith("/login")
    assert _authorize(driver, rp).headers["Location"].startswith("/login")


def test_declining_keeps_an_earlier_single_sign_on_session(app, driver, rp, acme):
    driver.sign_in()
    publish(acme)
    page = _terms_page(driver, _authorize(driver, rp, state="sso"))
    assert_error_redirect(_answer(driver, page, "decline"), rp.redirect_uri, "access_denied",
                          state="sso")
    assert driver.http.get("/account").status_code == 200
    # Declined is not accepted: the terms are asked again.
    _terms_page(driver, _authorize(driver, rp))


def test_another_tenants_terms_version_is_refused(factory, driver, rp, acme):
    other = factory.tenant("other", "Other")
    foreign = publish(other, name="other-terms")
    publish(acme)
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    refused = _answer(driver, page, version=str(foreign.id))
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert "have changed or were already answered" in refused.text
    assert _acceptances() == 0
    # Nor does a made-up id pass.
    assert _answer(driver, page, version="999999").status_code == 400
    assert _answer(driver, page, version="x' or 1=1").status_code == 400
    assert _acceptances() == 0


def test_a_stale_version_is_refused_and_the_new_one_shown(driver, rp, acme):
    publish(acme, version="1", en="The first text.")
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    publish(acme, version="2", en="The second text.")  # published while the page was open
    refused = _answer(driver, page)
    assert refused.status_code == 400
    assert "The second text." in refused.text and "The first text." not in refused.text
    assert _acceptances() == 0
    assert _is_code(driver.follow(_answer(driver, refused)), rp)
    assert _acceptances() == 1


def test_a_replayed_terms_post_is_refused(driver, rp, acme):
    publish(acme)
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    first = _answer(driver, page)
    assert _is_code(driver.follow(first), rp)
    replay = _answer(driver, page)
    assert_error_page(replay, 400)
    assert _acceptances() == 1


def test_a_replay_within_the_flow_is_refused(driver, rp, acme):
    """Two documents: the first one's POST sent again while the second is shown."""
    publish(acme, name="partner-terms", en="Partner text.")
    publish(acme, name="privacy", en="Privacy text.")
    first = _terms_page(driver, driver.login(_authorize(driver, rp)))
    assert "Partner text." in first.text and "after this one: 1" in first.text
    second = _terms_page(driver, _answer(driver, first))
    assert "Privacy text." in second.text
    replay = _answer(driver, first)
    assert replay.status_code == 400 and "Privacy text." in replay.text
    assert _acceptances() == 1
    assert _is_code(driver.follow(_answer(driver, second)), rp)


def test_terms_posts_need_the_csrf_token(driver, rp, acme):
    publish(acme)
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    action, version, _ = _form(page)
    forged = driver.http.post(action, data={"decision": "accept", "version": version})
    assert forged.status_code == 400 and "Location" not in forged.headers
    assert _acceptances() == 0


def test_no_answer_is_asked_again(driver, rp, acme):
    publish(acme)
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    response = _answer(driver, page, decision="maybe")
    assert response.status_code == 400 and "Choose whether to accept" in response.text


def test_a_post_for_a_flow_at_another_step_is_refused(driver, rp, acme, factory):
    """The terms view answers only a flow at its TERMS step (here: still at LOGIN)."""
    version = publish(acme)
    first = _authorize(driver, rp)
    flow_id = query_of(first.headers["Location"])["flow"]
    driver.sign_in()
    page = driver.http.get("/login")
    response = driver.http.post(f"/terms?flow={flow_id}", data={
        "decision": "accept", "version": str(version.id), "csrf_token": csrf_of(page.text)})
    assert_error_page(response, 400)
    assert _acceptances() == 0


def test_the_terms_of_the_client_and_of_the_chosen_tenant(factory, driver, rp, acme):
    """A client's document is asked at that client only; the tenant's at all its clients."""
    other_rp = factory.client(redirect_uri="https://other.example.com/cb")
    publish(acme, name="portal-terms", client=_client_row(other_rp), en="Portal only.")
    driver.sign_in()
    assert _is_code(_authorize(driver, rp), rp)  # this client requires nothing
    page = _terms_page(driver, _authorize(driver, other_rp))
    assert "Portal only." in page.text
    assert _is_code(driver.follow(_answer(driver, page)), other_rp)


def test_a_platform_document_required_everywhere(factory, driver, rp, acme):
    publish(name="platform-terms", platform=True, en="Everyone agrees.")
    shared = factory.client(redirect_uri="https://shared.example.com/cb", shared=True)
    driver.sign_in()
    page = _terms_page(driver, _authorize(driver, rp))
    assert "Everyone agrees." in page.text
    assert _is_code(driver.follow(_answer(driver, page)), rp)
    assert _is_code(_authorize(driver, shared), shared)  # accepted once, for every client


def test_another_tenants_requirement_is_not_asked(factory, driver, rp, acme):
    publish(factory.tenant("other", "Other"), name="other-terms")
    driver.sign_in()
    assert _is_code(_authorize(driver, rp), rp)


def test_the_text_is_shown_in_french(driver, rp, acme):
    publish(acme)
    page = _terms_page(driver, driver.login(_authorize(driver, rp, ui_locales="fr")))
    assert '<html lang="fr">' in page.text
    assert "Vous acceptez." in page.text and "You agree" not in page.text
    assert 'lang="fr"' in page.text and "Accepter" in page.text and "Refuser" in page.text


def test_a_script_in_the_markdown_never_reaches_the_page(driver, rp, acme):
    publish(acme, en="<script>alert(1)</script>\n\n[click](javascript:alert(2))\n\n"
                     '<a href="https://x.example" onclick="alert(3)">x</a>\n\n'
                     '<img src=x onerror="alert(4)">')
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    body = page.text.split('class="terms-text"', 1)[1].split("</div>", 1)[0]
    tags = re.findall(r"<[a-z][^>]*>", body)
    assert tags and not [t for t in tags if re.search(r"\son\w+=|javascript:|<script|<img", t)], tags
    assert "&lt;script&gt;" in body  # raw HTML stays visible text, never markup


def test_a_row_written_around_the_publisher_is_sanitised_at_display(driver, rp, acme):
    version = publish(acme)
    version.html_en = '<p onclick="alert(1)">Hi</p><script>alert(2)</script>'
    db.session.commit()
    page = _terms_page(driver, driver.login(_authorize(driver, rp)))
    assert "<p>Hi</p>" in page.text and "alert(" not in page.text.split("terms-text")[1]


def test_the_chosen_organisations_terms_at_a_shared_client(factory, driver, acme, alice):
    from idp.models import Membership

    globex = factory.tenant("globex", "Globex")
    db.session.add(Membership(user_id=alice.id, tenant_id=globex.id, role="member"))
    db.session.commit()
    publish(acme, name="acme-terms", en="Acme text.")
    publish(globex, name="globex-terms", en="Globex text.")
    shared = factory.client(redirect_uri="https://shared.example.com/cb", shared=True)
    driver.sign_in()
    page = _terms_page(driver, _authorize(driver, shared, organization="globex"))
    assert "Globex text." in page.text and "Acme text." not in page.text
    assert _is_code(driver.follow(_answer(driver, page)), shared)
    # Acme's terms wait for the day the person picks acme.
    page = _terms_page(driver, _authorize(driver, shared, organization="acme"))
    assert "Acme text." in page.text


def test_accepted_in_another_tab(driver, rp, acme):
    """Two tabs at the same terms: the second Accept finds nothing waiting (refused, no
    second row); a Decline there still declines."""
    publish(acme)
    driver.sign_in()
    first = _terms_page(driver, _authorize(driver, rp))
    second = _terms_page(driver, _authorize(driver, rp, state="tab2"))
    assert _is_code(driver.follow(_answer(driver, first)), rp)
    assert_error_page(_answer(driver, second), 400)
    assert _acceptances() == 1
    assert_error_redirect(_answer(driver, second, "decline"), rp.redirect_uri, "access_denied",
                          state="tab2")


def test_a_tenants_document_at_a_shared_client_is_asked_of_its_members_only(factory, driver,
                                                                             acme, alice):
    """Acme requires its document at the portal it shares with Globex: a person who signs
    in there for Globex is not shown (nor asked to accept) Acme's terms."""
    from idp.models import Membership

    globex = factory.tenant("globex", "Globex")
    db.session.add(Membership(user_id=alice.id, tenant_id=globex.id, role="member"))
    db.session.commit()
    shared = factory.client(redirect_uri="https://shared.example.com/cb", shared=True)
    publish(acme, name="acme-portal-terms", client=_client_row(shared), en="Acme portal text.")
    driver.sign_in()
    assert _is_code(_authorize(driver, shared, organization="globex"), shared)
    page = _terms_page(driver, _authorize(driver, shared, organization="acme"))
    assert "Acme portal text." in page.text
