"""Interop: the npm openid-client library (v6), as an independent relying party.

``tests/node/rp.mjs`` runs discovery, PKCE + state + nonce, a browser-like login
on the hosted page (fetch with a cookie jar), the code grant with ID token
validation, userinfo, refresh, revocation and RP-initiated logout against the
live server, then prints a JSON summary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.required import missing
from tests.support import PASSWORD

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
RP_SCRIPT = NODE_DIR / "rp.mjs"
NODE = shutil.which("node")

REDIRECT_URI = "http://localhost:8080/callback"
POST_LOGOUT_URI = "http://localhost:8080/signed-out"

if NODE is None:
    missing("node is not installed (needed to run openid-client)", module_level=True)
if not (NODE_DIR / "node_modules" / "openid-client").is_dir():
    missing("tests/node/node_modules is missing: run `make node`", module_level=True)


def run_rp(live_server, rp, password: str = PASSWORD, expect_ok: bool = True,
           auth: str = "default") -> dict:
    """``auth``: "default" leaves the client authentication to openid-client (it sends
    client_secret_post), "basic" or "post" names it."""
    options = {"issuer": live_server.url, "client-id": rp.client_id,
               "redirect-uri": rp.redirect_uri, "post-logout-redirect-uri": POST_LOGOUT_URI,
               "email": "alice@example.com", "password": password,
               "scope": "openid profile email", "auth": auth}
    if rp.client_secret:
        options["client-secret"] = rp.client_secret
    # --name=value: random client ids and secrets may start with "-".
    command = [NODE, str(RP_SCRIPT), *(f"--{name}={value}" for name, value in options.items())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=NODE_DIR)
    try:
        summary = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"rp.mjs printed no JSON (exit {done.returncode}):\n"
                    f"{done.stdout}\n{done.stderr}")
    if expect_ok:
        assert done.returncode == 0, json.dumps(summary, indent=2) + "\n" + done.stderr
    else:
        assert done.returncode != 0, json.dumps(summary, indent=2)
    return summary


def assert_full_round_trip(summary: dict, live_server, public: bool) -> None:
    assert summary["ok"] is True
    assert summary["client"]["public"] is public
    assert summary["steps"] == ["discovery", "authorization_url", "browser_login",
                                "authorization_code_grant", "userinfo", "refresh_token_grant",
                                "revocation", "end_session"]
    discovery = summary["discovery"]
    assert discovery["issuer"] == live_server.url
    assert discovery["end_session_endpoint"] == f"{live_server.url}/oauth/logout"
    assert discovery["iss_parameter_supported"] is True

    callback = summary["callback"]
    assert callback["has_code"] and callback["state_matches"]
    assert callback["iss"] == live_server.url
    assert "idp_session" in callback["cookies"]
    assert any(hop.endswith("/login") for hop in callback["path"]), callback["path"]

    id_token = summary["id_token"]
    assert id_token["iss"] == live_server.url and id_token["nonce_matches"]
    assert id_token["email"] == "alice@example.com"
    assert id_token["amr"] == ["pwd"] and id_token["sid"]
    assert id_token["org_slug"] == "acme"

    assert summary["userinfo"]["email"] == "alice@example.com"
    assert summary["userinfo"]["sub"] == id_token["sub"]
    assert summary["userinfo"]["name"] == "Alice Martin"

    refresh = summary["refresh"]
    assert refresh["access_token_changed"] is True
    assert refresh["userinfo_email"] == "alice@example.com"
    if refresh["sub"] is not None:
        assert refresh["sub"] == id_token["sub"]

    revocation = summary["revocation"]
    assert revocation["revoked"] and revocation["refused_after"]
    assert revocation["error"] == "invalid_grant"

    logout = summary["logout"]
    assert logout["landed"] == POST_LOGOUT_URI
    assert logout["state_matches"] is True
    assert logout["prompt_none_error"] == "login_required"


def test_confidential_client_round_trip_with_the_default_authentication(live_server, factory):
    """openid-client as most applications use it: no method named, so client_secret_post,
    against a client registered the default way (`idp client create` without
    --auth-method). The code exchange was a 401 (WWWAuthenticateChallengeError)."""
    factory.user(given_name="Alice", family_name="Martin")
    rp = factory.client(redirect_uri=REDIRECT_URI, post_logout_redirect_uris=[POST_LOGOUT_URI])
    summary = run_rp(live_server, rp)
    assert summary["client"]["auth"] == "default"
    assert_full_round_trip(summary, live_server, public=False)
    assert summary["refresh"]["refresh_token_rotated"] is True


def test_confidential_client_round_trip_with_basic(live_server, factory):
    factory.user(given_name="Alice", family_name="Martin")
    rp = factory.client(redirect_uri=REDIRECT_URI, post_logout_redirect_uris=[POST_LOGOUT_URI])
    summary = run_rp(live_server, rp, auth="basic")
    assert summary["client"]["auth"] == "basic"
    assert_full_round_trip(summary, live_server, public=False)


def test_the_default_authentication_is_client_secret_post(live_server, factory):
    """The harness itself: the default run really sends client_secret_post, since a client
    pinned to client_secret_basic refuses it at the code exchange."""
    factory.user(given_name="Alice", family_name="Martin")
    rp = factory.client(redirect_uri=REDIRECT_URI, post_logout_redirect_uris=[POST_LOGOUT_URI],
                        auth_method="client_secret_basic")
    summary = run_rp(live_server, rp, expect_ok=False)
    assert summary["failed_step"] == "authorization_code_grant"
    assert summary["error"]["status"] == 401  # invalid_client, with a challenge


def test_public_client_round_trip(live_server, factory):
    factory.user(given_name="Alice", family_name="Martin")
    rp = factory.client(redirect_uri=REDIRECT_URI, public=True,
                        post_logout_redirect_uris=[POST_LOGOUT_URI])
    assert rp.client_secret is None
    summary = run_rp(live_server, rp)
    assert_full_round_trip(summary, live_server, public=True)


def test_the_relying_party_script_reports_a_failure(live_server, factory):
    """The harness itself: a refused login makes rp.mjs fail, naming the step."""
    factory.user()
    rp = factory.client(redirect_uri=REDIRECT_URI, post_logout_redirect_uris=[POST_LOGOUT_URI])
    summary = run_rp(live_server, rp, password=PASSWORD + "x", expect_ok=False)
    assert summary["ok"] is False
    assert summary["failed_step"] == "browser_login"
    assert "login refused" in summary["error"]["message"]
