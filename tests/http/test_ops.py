"""Health, readiness, metrics, and the language negotiation order."""

import re

import pytest

from idp.oauth.keys import KeyStore

METRICS_TOKEN = "m" * 43


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json() == {"status": "ok"}


def test_metrics_are_off_on_the_public_listener_by_default(app, client):
    assert app.config["IDP_METRICS_TOKEN"] is None
    client.get("/.well-known/openid-configuration")
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert "idp_http_requests_total" not in response.text


@pytest.mark.parametrize("authorization", [
    None, "Bearer", "Bearer wrong", f"Bearer {METRICS_TOKEN}x", f"Basic {METRICS_TOKEN}",
    METRICS_TOKEN, f"Bearer {METRICS_TOKEN[:-1]}",
])
def test_metrics_refused_without_the_token(app, client, monkeypatch, authorization):
    monkeypatch.setitem(app.config, "IDP_METRICS_TOKEN", METRICS_TOKEN)
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "idp_http_request" not in response.text


def test_metrics_count_requests_and_latency(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "IDP_METRICS_TOKEN", METRICS_TOKEN)
    client.get("/.well-known/openid-configuration")
    client.get("/.well-known/openid-configuration")
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    text = response.text
    match = re.search(r'idp_http_requests_total\{endpoint="oauth.openid_configuration",'
                      r'method="GET",status="200"\} (\d+)', text)
    assert match and int(match.group(1)) >= 2
    assert 'idp_http_request_duration_seconds_bucket{endpoint="oauth.openid_configuration"' in text


def test_readyz_fails_while_no_signing_key_is_loaded(app, client, monkeypatch, tmp_path):
    monkeypatch.setitem(app.extensions, "idp_keys", KeyStore(tmp_path / "no-keys"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable",
                                   "problems": {"signing_keys": "missing"}}


def test_before_init_readyz_fails_and_nothing_is_served(uninitialised_app):
    app = uninitialised_app()
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["problems"] == {"database": "not initialised",
                                            "signing_keys": "missing"}
    assert client.get("/healthz").status_code == 200  # the process is alive
    discovery = client.get("/.well-known/openid-configuration")
    assert discovery.status_code == 503 and discovery.get_json()["error"] == "server_error"
    page = client.get("/login")
    assert page.status_code == 503 and "not ready yet" in page.text
    assert "Traceback" not in page.text and "no such table" not in page.text
    assert "pas encore prêt" in client.get("/login", headers={"Accept-Language": "fr"}).text
    assert client.post("/oauth/token", data={}).status_code == 503

    result = app.test_cli_runner().invoke(args=["idp", "init"])
    assert result.exit_code == 0, result.output
    assert client.get("/readyz").get_json() == {"status": "ok"}
    assert client.get("/.well-known/openid-configuration").status_code == 200
    assert client.get("/login").status_code == 200


def test_readyz_fails_while_the_schema_is_behind_the_latest_migration(uninitialised_app):
    app = uninitialised_app(revision="0001")
    app.test_cli_runner().invoke(args=["idp", "keys", "rotate"])  # refused: no keys from it
    from idp.oauth.keys import ensure_keys

    ensure_keys(app.config["IDP_KEYS_DIR"])
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["problems"] == {"database": "not at the latest migration"}


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
