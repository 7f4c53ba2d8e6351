"""Which user claims a scope (or a `claims` request) releases (OIDC Core 5.4, 5.5)."""

from __future__ import annotations

import json

from idp.models import User

SCOPE_CLAIMS = {
    "profile": ("name", "given_name", "family_name", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
}
# Claims about the person: what a scope, or a `claims` request, releases.
USER_CLAIMS = tuple(c for claims in SCOPE_CLAIMS.values() for c in claims)
SUPPORTED_SCOPES = ["openid", "profile", "email", "phone", "address", "offline_access"]
ORG_CLAIMS = ("org_id", "org_slug", "org_role")
SUPPORTED_CLAIMS = sorted({
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
    "at_hash", *ORG_CLAIMS, *USER_CLAIMS})


class InvalidClaimsRequest(ValueError):
    pass


def parse_claims_request(raw: str | None) -> dict | None:
    """Validate the `claims` parameter: a JSON object with `userinfo`/`id_token` members."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidClaimsRequest("'claims' is not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidClaimsRequest("'claims' must be a JSON object")
    result = {}
    for member in ("userinfo", "id_token"):
        requested = value.get(member)
        if requested is None:
            continue
        if not isinstance(requested, dict):
            raise InvalidClaimsRequest(f"'claims.{member}' must be a JSON object")
        result[member] = {
            name: _claim_spec(member, name, spec) for name, spec in requested.items()
            if isinstance(name, str) and len(name) < 100
        }
    return result


def _claim_spec(member: str, name: str, spec) -> dict | None:
    """One claim's request: null or an object. ``acr`` is acted on, so its shape is checked:
    {essential: bool, value: str} or {essential: bool, values: [str]}."""
    if not isinstance(spec, dict):
        return None
    if name == "acr" and member == "id_token":
        values = spec.get("values", [])
        if (not isinstance(spec.get("essential", False), bool)
                or not isinstance(spec.get("value", ""), str)
                or not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
            raise InvalidClaimsRequest("'claims.id_token.acr' is malformed")
    return spec


def scope_claims(scope: str) -> set[str]:
    """The user claims the scopes in `scope` release."""
    return {claim for item in scope.split() for claim in SCOPE_CLAIMS.get(item, ())}


def requested_user_claims(claims_request: dict | None) -> list[str]:
    """The user claims a `claims` request names, in either member, in a stable order."""
    named = {name for member in (claims_request or {}).values() for name in member}
    return [claim for claim in USER_CLAIMS if claim in named]


def limit_claims_request(claims_request: dict | None, allowed_scope: str) -> dict | None:
    """The request without the user claims the client may not ask for: those outside the
    claims of the scopes it is registered for. They are dropped, not refused: a claim
    that is not available is left out of the response (OIDC Core 5.5)."""
    if not claims_request:
        return claims_request
    allowed = scope_claims(allowed_scope)
    return {member: {name: spec for name, spec in requested.items()
                     if name not in USER_CLAIMS or name in allowed}
            for member, requested in claims_request.items()}


def essential_acr_values(claims_request: dict | None) -> list[str]:
    """The acr values requested as essential ([] when acr is not essential or any will do)."""
    spec = ((claims_request or {}).get("id_token") or {}).get("acr") or {}
    if not spec.get("essential"):
        return []
    if "value" in spec:
        return [spec["value"]]
    return list(spec.get("values") or [])


def _value(user: User, claim: str):
    if claim == "name":
        return user.name
    if claim == "updated_at":
        return user.updated_at
    if claim == "address":
        return None
    return getattr(user, claim, None)


def user_claims(user: User, scope: str, requested: dict | None = None) -> dict:
    """Claims for `scope`, plus any individually requested ones; empty values left out."""
    names = []
    for item in scope.split():
        names.extend(SCOPE_CLAIMS.get(item, ()))
    names.extend(name for name in (requested or {}) if name not in names)
    claims = {"sub": user.sub}
    for name in names:
        if name in USER_CLAIMS:
            value = _value(user, name)
            if value is not None:
                claims[name] = value
    return claims
