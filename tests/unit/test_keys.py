"""Signing keys: `idp keys rotate` promotes the published next key, keeps the retired
one published, and every process notices the change without a restart."""

from __future__ import annotations

import json
import os

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet

from idp.oauth import keys as keys_module
from idp.oauth.keys import KeyStore, ensure_keys, rotate_keys


def _manifest(keys_dir) -> list[dict]:
    return json.loads((keys_dir / "keys.json").read_text())["keys"]


def _kids(entries, state, alg=None):
    return {e["kid"] for e in entries if e["state"] == state and (alg is None or e["alg"] == alg)}


@pytest.fixture
def keys_dir(app, tmp_path, monkeypatch):
    """A key directory of this test's own, used by the app and its CLI."""
    directory = tmp_path / "keys"
    ensure_keys(directory)
    monkeypatch.setitem(app.config, "IDP_KEYS_DIR", str(directory))
    monkeypatch.setitem(app.extensions, "idp_keys", KeyStore(directory))
    monkeypatch.setattr(keys_module, "RELOAD_CHECK_SECONDS", 0.0)
    return directory


def test_ensure_keys_creates_an_active_and_a_next_key_per_algorithm(tmp_path):
    directory = tmp_path / "k"
    assert ensure_keys(directory) is True
    entries = _manifest(directory)
    for alg in ("ES256", "RS256"):
        assert len(_kids(entries, "active", alg)) == 1 and len(_kids(entries, "next", alg)) == 1
    assert ensure_keys(directory) is False  # idempotent
    for entry in entries:
        mode = os.stat(directory / f"{entry['kid']}.pem").st_mode & 0o777
        assert mode == 0o600, oct(mode)


def test_rotate_cli(app, keys_dir):
    client = app.test_client()
    before = _manifest(keys_dir)
    old_active, old_next = _kids(before, "active"), _kids(before, "next")
    with app.app_context():
        store = app.extensions["idp_keys"]
        old_access = store.sign({"iss": "x", "sub": "s"}, "ES256", "at+jwt")
        old_id = store.sign({"iss": "x", "sub": "s"}, "RS256")

    result = app.test_cli_runner().invoke(args=["idp", "keys", "rotate"])
    assert result.exit_code == 0, result.output

    after = _manifest(keys_dir)
    assert _kids(after, "retired") == old_active
    assert _kids(after, "active") == old_next
    new_next = _kids(after, "next")
    assert len(new_next) == 2 and not new_next & (old_active | old_next)
    for entry in after:
        if entry["state"] == "retired":
            assert entry["remove_after"] > entry["retired_at"]

    published = {key["kid"] for key in client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert published == old_active | old_next | new_next

    jwks = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    for token in (old_access, old_id):
        assert jwt.decode(token, jwks).claims["sub"] == "s"  # still verifies

    with app.app_context():
        store = app.extensions["idp_keys"]
        for alg in ("ES256", "RS256"):
            kid, _ = store.signing_key(alg)
            assert kid in old_next and kid in _kids(before, "next", alg)
        fresh = store.sign({"iss": "x", "sub": "t"}, "ES256")
    assert jwt.decode(fresh, jwks).header["kid"] in old_next


def test_tokens_issued_before_rotation_still_work(app, keys_dir, factory, driver):
    from tests.support import basic_auth

    factory.user()
    rp = factory.client()
    before = driver.tokens(rp)
    published_next = _kids(_manifest(keys_dir), "next")

    assert app.test_cli_runner().invoke(args=["idp", "keys", "rotate"]).exit_code == 0

    client = driver.http
    assert client.get("/oauth/userinfo", headers={
        "Authorization": f"Bearer {before['access_token']}"}).status_code == 200
    jwks = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    jwt.decode(before["id_token"], jwks)
    after = driver.tokens(rp)
    for name in ("access_token", "id_token"):
        assert jwt.decode(after[name], jwks).header["kid"] in published_next
    introspected = client.post("/oauth/introspect", data={"token": before["access_token"]},
                               headers=basic_auth(rp.client_id, rp.client_secret)).get_json()
    assert introspected["active"] is True


def test_retired_keys_are_pruned_after_their_time(tmp_path):
    directory = tmp_path / "k"
    ensure_keys(directory)
    first_active = _kids(_manifest(directory), "active")
    rotate_keys(directory, retain_seconds=0)
    assert _kids(_manifest(directory), "retired") == first_active
    rotate_keys(directory, retain_seconds=3600)
    entries = _manifest(directory)
    assert not first_active & {e["kid"] for e in entries}
    for kid in first_active:
        assert not (directory / f"{kid}.pem").exists()
    assert len(_kids(entries, "retired")) == 2  # the second generation, kept an hour


def test_a_running_store_notices_a_rotation(tmp_path, monkeypatch):
    monkeypatch.setattr(keys_module, "RELOAD_CHECK_SECONDS", 0.0)
    directory = tmp_path / "k"
    ensure_keys(directory)
    store = KeyStore(directory)
    old_kid, _ = store.signing_key("ES256")
    stat = (directory / "keys.json").stat()
    rotate_keys(directory, retain_seconds=3600)
    # Rewritten within one tick of the file system clock: the mtime alone says nothing.
    os.utime(directory / "keys.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    new_kid, _ = store.signing_key("ES256")
    assert new_kid != old_kid
    assert new_kid in _kids(_manifest(directory), "active")


def test_store_checks_the_manifest_at_most_every_few_seconds(tmp_path, monkeypatch):
    directory = tmp_path / "k"
    ensure_keys(directory)
    store = KeyStore(directory)
    first = store.jwks()
    calls = []
    real_stat = keys_module._signature

    def counting(path):
        calls.append(path)
        return real_stat(path)

    monkeypatch.setattr(keys_module, "_signature", counting)
    for _ in range(50):
        assert store.jwks() is first
    assert len(calls) <= 1


def test_missing_keys_is_a_clear_error(tmp_path):
    store = KeyStore(tmp_path / "none")
    with pytest.raises(RuntimeError, match="idp init"):
        store.jwks()


def test_jwks_has_no_private_material(tmp_path):
    directory = tmp_path / "k"
    ensure_keys(directory)
    for key in KeyStore(directory).jwks()["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_signed_tokens_verify_with_joserfc_and_tampering_is_refused(tmp_path, alg):
    """KeyStore.sign signs with cryptography directly: the result is a standard JWS."""
    ensure_keys(tmp_path)
    store = KeyStore(tmp_path)
    claims = {"iss": "https://idp.example.com", "sub": "é-unicode", "n": 1, "l": ["a"]}
    token = store.sign(claims, alg, "at+jwt")
    decoded = jwt.decode(token, store.verification_keys(), algorithms=[alg])
    assert decoded.claims == claims
    assert decoded.header == {"typ": "at+jwt", "alg": alg, "kid": store.signing_key(alg)[0]}
    head, body, signature = token.split(".")
    forged = jwt.encode({"alg": alg}, {**claims, "sub": "x"}, store.signing_key(alg)[1])
    with pytest.raises(BadSignatureError):
        jwt.decode(".".join([head, forged.split(".")[1], signature]),
                   store.verification_keys(), algorithms=[alg])


def test_verify_es256_accepts_only_our_plain_valid_tokens(tmp_path):
    """Its None means "ask joserfc": only a good signature by our key gives claims."""
    ensure_keys(tmp_path)
    store = KeyStore(tmp_path)
    kid, key = store.signing_key("ES256")
    token = store.sign({"sub": "a"}, "ES256", "at+jwt")
    assert store.verify_es256(token) == ({"typ": "at+jwt", "alg": "ES256", "kid": kid},
                                         {"sub": "a"})
    head, body, signature = token.split(".")
    other = jwt.encode({"alg": "ES256", "kid": kid}, {"sub": "b"}, key)
    # One character of the signature changed: the second-to-last, whose six bits are all
    # signature (the last one's low bits are padding); "AA" was once the signature's own end.
    tampered = signature[:-2] + ("B" if signature[-2] == "A" else "A") + signature[-1]
    refused = [
        f"{head}.{other.split('.')[1]}.{signature}",  # claims swapped under the signature
        f"{head}.{body}.{tampered}",
        f"{head}.{body}.{signature}=",  # not the compact alphabet
        f"{head}.{body}",
        jwt.encode({"alg": "ES256", "kid": kid, "cty": "x"}, {"sub": "a"}, key),  # header+
        jwt.encode({"alg": "ES256", "kid": "unknown"}, {"sub": "a"}, key),
        jwt.encode({"alg": "RS256", "kid": store.signing_key("RS256")[0]}, {"sub": "a"},
                   store.signing_key("RS256")[1]),
        jwt.encode({"alg": "ES256", "kid": kid}, {"sub": "a"},
                   ECKey.generate_key("P-256", private=True)),
    ]
    for candidate in refused:
        assert store.verify_es256(candidate) is None, candidate


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_verified_tokens_are_remembered_for_their_key_set_only(tmp_path):
    """A token's signature is checked once per key set; a reload checks it again, and a
    changed byte is never served from the memory."""
    ensure_keys(tmp_path)
    store = KeyStore(tmp_path)
    token = store.sign({"sub": "a"}, "ES256", "at+jwt")
    first = store.verify_es256(token)
    first[1]["sub"] = "changed by a caller"
    assert list(store._verified) == [token]
    assert store.verify_es256(token)[1] == {"sub": "a"}  # a copy, from the memory
    head, body, signature = token.split(".")
    middle = "B" if signature[40] == "A" else "A"  # a whole sextet: always other bytes
    assert store.verify_es256(f"{head}.{body}.{signature[:40]}{middle}{signature[41:]}") is None
    spare = ALPHABET[ALPHABET.index(signature[-1]) ^ 0b0001]  # the same bytes, spelled otherwise
    assert store.verify_es256(f"{head}.{body}.{signature[:-1]}{spare}") is None
    assert list(store._verified) == [token]  # refusals are not remembered
    before = store._verified
    rotate_keys(tmp_path, retain_seconds=3600)
    store._checked_at = 0.0  # as if the reload interval had passed
    assert store.verify_es256(token) is not None  # the retired key still verifies it
    assert store._verified is not before and store._verified_for is store._loaded
