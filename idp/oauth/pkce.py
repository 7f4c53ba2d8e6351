"""Strict PKCE (RFC 7636 as profiled by RFC 9700 section 2.1.1).

Authlib's ``CodeChallenge`` accepts ``plain`` and defaults a missing method to
it. Here: S256 only, the method must be stated, public clients must send a
challenge, and a verifier sent for a code issued without a challenge is a
downgrade attempt and is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from base64 import urlsafe_b64encode

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError

CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
VERIFIER_RE = CHALLENGE_RE
SUPPORTED_METHODS = ["S256"]


def s256(verifier: str) -> str:
    return urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class StrictPKCE:
    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload",
                            self.validate_code_challenge)
        grant.register_hook("after_validate_token_request", self.validate_code_verifier)

    def validate_code_challenge(self, grant, redirect_uri) -> None:
        payload = grant.request.payload
        challenge = payload.data.get("code_challenge")
        method = payload.data.get("code_challenge_method")
        if challenge is None:
            if method is not None:
                raise InvalidRequestError("Missing 'code_challenge'.", redirect_uri=redirect_uri)
            if grant.request.client.is_public:
                raise InvalidRequestError("Public clients must use PKCE ('code_challenge').",
                                          redirect_uri=redirect_uri)
            return
        if method != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'.",
                                      redirect_uri=redirect_uri)
        if not CHALLENGE_RE.match(challenge):
            raise InvalidRequestError("Invalid 'code_challenge'.", redirect_uri=redirect_uri)

    def validate_code_verifier(self, grant, result=None) -> None:
        request = grant.request
        verifier = request.form.get("code_verifier")
        code = request.authorization_code
        challenge = code.code_challenge
        if not challenge:
            if verifier is not None:
                raise InvalidGrantError("'code_verifier' sent for a code issued without PKCE.")
            if request.client.is_public:
                raise InvalidGrantError("Public clients must use PKCE.")
            return
        if not verifier:
            raise InvalidGrantError("Missing 'code_verifier'.")
        if not VERIFIER_RE.match(verifier):
            raise InvalidGrantError("Invalid 'code_verifier'.")
        if not hmac.compare_digest(s256(verifier), challenge):
            raise InvalidGrantError("'code_verifier' does not match the challenge.")
