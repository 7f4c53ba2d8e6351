"""The `claims` request parameter (OIDC Core 5.5) and which claims a scope releases (5.4)."""

from __future__ import annotations

import json

import pytest

from idp.models import User
from idp.oauth.claims import (
    InvalidClaimsRequest,
    essential_acr_values,
    parse_claims_request,
    user_claims,
)


def test_absent_claims_parameter():
    assert parse_claims_request(None) is None


def test_valid_claims_request():
    raw = json.dumps({
        "userinfo": {"email": {"essential": True}, "given_name": None},
        "id_token": {"acr": {"essential": True, "values": ["urn:idp:loa:2"]},
                     "auth_time": {"essential": True}},
        "unknown_member": {"x": 1},
    })
    parsed = parse_claims_request(raw)
    assert set(parsed) == {"userinfo", "id_token"}
    assert parsed["userinfo"] == {"email": {"essential": True}, "given_name": None}
    assert essential_acr_values(parsed) == ["urn:idp:loa:2"]


@pytest.mark.parametrize("raw", [
    "", "{", "not json", "[1]", '"string"', "42", "null", "true",
    '{"userinfo": []}', '{"id_token": "acr"}', '{"userinfo": 5}',
    "[" * 5000 + "]" * 5000,
    '{"id_token": {"acr": {"essential": "true"}}}',
    '{"id_token": {"acr": {"essential": true, "values": "urn:idp:loa:1"}}}',
    '{"id_token": {"acr": {"essential": true, "values": [1, 2]}}}',
    '{"id_token": {"acr": {"essential": true, "value": 2}}}',
    '{"id_token": {"acr": {"essential": true, "value": null}}}',
])
def test_malformed_claims_request(raw):
    with pytest.raises(InvalidClaimsRequest):
        parse_claims_request(raw)


def test_odd_but_valid_member_values_are_tolerated():
    parsed = parse_claims_request(json.dumps({"userinfo": {"email": 5, "name": [1],
                                                           "x" * 200: None}}))
    assert parsed["userinfo"] == {"email": None, "name": None}


@pytest.mark.parametrize("acr,expected", [
    (None, []),
    ({"essential": False, "value": "urn:idp:loa:2"}, []),
    ({"value": "urn:idp:loa:2"}, []),
    ({"essential": True}, []),
    ({"essential": True, "value": "urn:idp:loa:2"}, ["urn:idp:loa:2"]),
    ({"essential": True, "values": ["a", "b"]}, ["a", "b"]),
])
def test_essential_acr_values(acr, expected):
    parsed = parse_claims_request(json.dumps({"id_token": {"acr": acr}}))
    assert essential_acr_values(parsed) == expected


def test_acr_in_userinfo_is_not_an_authentication_requirement():
    parsed = parse_claims_request(json.dumps(
        {"userinfo": {"acr": {"essential": True, "value": "urn:idp:loa:2"}}}))
    assert essential_acr_values(parsed) == []


def _user(**kwargs):
    defaults = {"sub": "sub-1", "email": "a@example.com", "email_verified": True,
                "given_name": "Ada", "family_name": None, "locale": "fr",
                "phone_number": None, "phone_number_verified": False, "updated_at": 1}
    defaults.update(kwargs)
    return User(**defaults)


def test_claims_by_scope():
    user = _user()
    assert user_claims(user, "openid") == {"sub": "sub-1"}
    assert user_claims(user, "openid email") == {"sub": "sub-1", "email": "a@example.com",
                                                 "email_verified": True}
    profile = user_claims(user, "openid profile")
    assert profile["name"] == "Ada" and profile["given_name"] == "Ada"
    assert "family_name" not in profile and "email" not in profile
    assert profile["locale"] == "fr" and profile["updated_at"] == 1


def test_requested_claims_are_added_but_only_known_ones():
    user = _user()
    claims = user_claims(user, "openid", {"email": None, "password_hash": None, "id": None})
    assert claims == {"sub": "sub-1", "email": "a@example.com"}


def test_empty_values_are_left_out():
    user = _user(given_name=None, phone_number=None)
    claims = user_claims(user, "openid profile phone address")
    assert "name" not in claims and "phone_number" not in claims and "address" not in claims
    assert claims["phone_number_verified"] is False
