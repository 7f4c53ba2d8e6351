"""`idp terms publish` and `idp terms list`, and their bad inputs (exit code 2, one line)."""

from __future__ import annotations

import json

import pytest

from idp.extensions import db
from idp.models import TermsRequirement, TermsVersion


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def texts(tmp_path):
    en = tmp_path / "en.md"
    fr = tmp_path / "fr.md"
    en.write_text("# Partner terms\n\n<script>alert(1)</script> You agree.", encoding="utf-8")
    fr.write_text("# Conditions\n\nVous acceptez.", encoding="utf-8")
    return str(en), str(fr)


@pytest.fixture
def tenant(factory):
    return factory.tenant()


def _publish(runner, texts, *extra, version="1", document="partner-terms"):
    en, fr = texts
    return runner.invoke(args=["idp", "terms", "publish", "--document", document,
                               "--version", version, "--en-file", en, "--fr-file", fr, *extra])


def _requirements() -> list[tuple]:
    return [(r.tenant_id, r.client_id) for r in db.session.query(TermsRequirement)]


def test_publish_for_a_tenant_renders_sanitised_html(runner, texts, tenant):
    result = _publish(runner, texts, "--tenant", "acme")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["document"] == "partner-terms" and out["version"] == "1"
    assert out["owner"] == "acme"
    version = db.session.get(TermsVersion, out["id"])
    assert version.html_en.startswith("<h2>Partner terms</h2>")
    assert "<script" not in version.html_en and "&lt;script&gt;" in version.html_en
    assert "Vous acceptez." in version.html_fr and version.markdown_fr.startswith("# Conditions")
    assert _requirements() == [(tenant.id, None)]

    again = _publish(runner, texts, "--tenant", "acme", version="2")
    assert again.exit_code == 0, again.output
    assert _requirements() == [(tenant.id, None)]  # required once, whatever the versions


def test_publish_for_a_client_and_platform_wide(runner, texts, tenant, factory):
    rp = factory.client()
    assert _publish(runner, texts, "--tenant", "acme", "--client", rp.client_id,
                    document="portal").exit_code == 0
    everyone = _publish(runner, texts, "--platform", document="platform-terms")
    assert everyone.exit_code == 0, everyone.output
    assert json.loads(everyone.output)["owner"] == "platform"
    by_acme = _publish(runner, texts, "--platform", "--tenant", "acme",
                       document="platform-terms", version="2")
    assert by_acme.exit_code == 0, by_acme.output
    assert sorted(_requirements(), key=str) == sorted(
        [(None, rp.client_id), (None, None), (tenant.id, None)], key=str)


def test_publish_with_urls(runner, tenant):
    result = runner.invoke(args=["idp", "terms", "publish", "--tenant", "acme", "--document",
                                 "linked", "--version", "1", "--en-url",
                                 "https://example.com/terms-en", "--fr-url",
                                 "https://example.com/terms-fr"])
    assert result.exit_code == 0, result.output
    version = db.session.get(TermsVersion, json.loads(result.output)["id"])
    assert version.url_fr == "https://example.com/terms-fr" and version.html_en is None


@pytest.mark.parametrize("args, message", [
    (["--tenant", "nope"], "no tenant 'nope'"),
    (["--tenant", "acme", "--client", "nope"], "no client 'nope'"),
    ([], "needs --tenant (or --platform)"),
])
def test_bad_targets_exit_2(runner, texts, tenant, args, message):
    result = _publish(runner, texts, *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert db.session.query(TermsVersion).count() == 0


def test_a_client_of_another_tenant_is_refused(runner, texts, tenant, factory):
    other = factory.client(tenant=factory.tenant("other", "Other"))
    result = _publish(runner, texts, "--tenant", "acme", "--client", other.client_id)
    assert result.exit_code == 2 and "belongs to another tenant" in result.output
    assert db.session.query(TermsVersion).count() == 0


def test_a_duplicate_version_exits_2_and_changes_nothing(runner, texts, tenant):
    assert _publish(runner, texts, "--tenant", "acme").exit_code == 0
    again = _publish(runner, texts, "--tenant", "acme")
    assert again.exit_code == 2 and "already published" in again.output
    assert db.session.query(TermsVersion).count() == 1
    # The same name on the platform or for another tenant is another document.
    assert _publish(runner, texts, "--platform").exit_code == 0


def test_a_missing_file_exits_2(runner, texts, tenant, tmp_path):
    result = runner.invoke(args=["idp", "terms", "publish", "--tenant", "acme", "--document",
                                 "d", "--version", "1", "--en-file", str(tmp_path / "none.md"),
                                 "--fr-file", texts[1]])
    assert result.exit_code == 2 and "cannot read" in result.output
    only_en = runner.invoke(args=["idp", "terms", "publish", "--tenant", "acme", "--document",
                                  "d", "--version", "1", "--en-file", texts[0]])
    assert only_en.exit_code == 2 and "the fr text" in only_en.output
    assert db.session.query(TermsVersion).count() == 0


@pytest.mark.parametrize("args, message", [
    (["--document", "Bad Name", "--version", "1"], "document name"),
    (["--document", "d", "--version", "1 2"], "version must be"),
    (["--document", "d", "--version", "1", "--en-url", "http://example.com/t"], "https://"),
    (["--document", "d", "--version", "1", "--en-url", "javascript:alert(1)"], "https://"),
])
def test_bad_names_versions_and_urls_exit_2(runner, texts, tenant, args, message):
    en, fr = texts
    files = ["--fr-file", fr] + ([] if "--en-url" in args else ["--en-file", en])
    result = runner.invoke(args=["idp", "terms", "publish", "--tenant", "acme", *args, *files])
    assert result.exit_code == 2 and message in result.output, result.output


def test_text_and_url_for_one_language_is_refused(runner, texts, tenant):
    result = _publish(runner, texts, "--tenant", "acme", "--en-url", "https://e.example/t")
    assert result.exit_code == 2 and "(one)" in result.output


def test_a_file_that_is_not_utf8_exits_2(runner, texts, tenant, tmp_path):
    binary = tmp_path / "logo.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    result = _publish(runner, (str(binary), texts[1]), "--tenant", "acme")
    assert result.exit_code == 2 and "cannot read" in result.output


def test_list_as_table_and_json(runner, texts, tenant):
    assert "no terms documents" in runner.invoke(args=["idp", "terms", "list"]).output
    _publish(runner, texts, "--tenant", "acme")
    _publish(runner, texts, "--tenant", "acme", version="2")
    _publish(runner, texts, "--platform", document="platform-terms")
    rows = json.loads(runner.invoke(args=["idp", "terms", "list", "--json"]).output)
    assert rows == [
        {"document": "partner-terms", "owner": "acme", "latest": "2", "versions": ["1", "2"],
         "published_at": rows[0]["published_at"], "required_by": ["tenant:acme"],
         "accepted_latest": 0},
        {"document": "platform-terms", "owner": "platform", "latest": "1", "versions": ["1"],
         "published_at": rows[1]["published_at"], "required_by": ["everyone"],
         "accepted_latest": 0}]
    table = runner.invoke(args=["idp", "terms", "list"]).output.splitlines()
    assert table[0].split() == ["DOCUMENT", "OWNER", "LATEST", "ACCEPTED", "REQUIRED", "BY"]
    assert table[1].split() == ["partner-terms", "acme", "2", "0", "tenant:acme"]
    assert table[2].split() == ["platform-terms", "platform", "1", "0", "everyone"]


def test_client_create_third_party_flag(runner, tenant):
    from idp.models import Client

    result = runner.invoke(args=["idp", "client", "create", "--name", "Partner app",
                                 "--redirect-uri", "https://partner.example.com/cb",
                                 "--tenant", "acme", "--third-party", "--json"])
    assert result.exit_code == 0, result.output
    client_id = json.loads(result.output)["client_id"]
    assert db.session.query(Client).filter_by(client_id=client_id).one().third_party is True
    first = runner.invoke(args=["idp", "client", "create", "--name", "Own portal",
                                "--redirect-uri", "https://own.example.com/cb", "--json"])
    client_id = json.loads(first.output)["client_id"]
    assert db.session.query(Client).filter_by(client_id=client_id).one().third_party is False
