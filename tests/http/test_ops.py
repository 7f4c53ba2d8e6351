"""Health, readiness, metrics, and the language negotiation order."""

import re


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_metrics_count_requests_and_latency(client):
    client.get("/.well-known/openid-configuration")
    client.get("/.well-known/openid-configuration")
    text = client.get("/metrics").text
    match = re.search(r'idp_http_requests_total\{endpoint="oauth.openid_configuration",'
                      r'method="GET",status="200"\} (\d+)', text)
    assert match and int(match.group(1)) >= 2
    assert 'idp_http_request_duration_seconds_bucket{endpoint="oauth.openid_configuration"' in text


def test_language_from_accept_language(client):
    page = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr">' in page.text and "Se connecter" in page.text
    page = client.get("/login", headers={"Accept-Language": "de, en;q=0.5"})
    assert '<html lang="en">' in page.text


def test_ui_locales_beats_accept_language_and_user_choice_beats_both(client, factory, driver):
    factory.user(locale="en")
    rp = factory.client()
    response = driver.authorize(rp, ui_locales="fr-CA en", code_challenge="a" * 43,
                                code_challenge_method="S256")
    page = client.get(response.headers["Location"], headers={"Accept-Language": "en"})
    assert '<html lang="fr">' in page.text
    # once signed in, the user's own language wins over ui_locales
    driver.login(response)
    home = client.get("/", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in home.text
