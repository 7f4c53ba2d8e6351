"""Reading ``id_token_hint``: our own ID tokens, signature checked, expiry ignored.

OIDC allows an expired ID token as a hint (the RP may hold an old one); the
signature and issuer must still be ours.
"""

from __future__ import annotations

from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError


class InvalidHint(ValueError):
    pass


def decode_id_token_hint(value: str) -> dict:
    if not isinstance(value, str) or len(value) > 8192 or value.count(".") != 2:
        raise InvalidHint("malformed")
    keys = current_app.extensions["idp_keys"].verification_keys()
    try:
        token = jwt.decode(value, keys, algorithms=["RS256", "ES256"])
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidHint("bad signature") from exc
    if token.header.get("typ", "JWT") != "JWT":
        # Our access tokens (at+jwt) and logout tokens (logout+jwt) verify with the same
        # keys; they are handed to other parties and are no evidence of a sign-in.
        raise InvalidHint("not an ID token")
    claims = token.claims
    if claims.get("iss") != current_app.config["IDP_ISSUER"] or not isinstance(
            claims.get("sub"), str):
        raise InvalidHint("not ours")
    return claims
