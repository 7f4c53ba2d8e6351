"""Passkeys and security keys (WebAuthn): passwordless, or the second step after the password.

Identifies (``identifies``): a discoverable credential names its owner, so a
passwordless sign-in needs no email address; user verification (PIN,
biometrics) is then required, and such a passkey counts as two factors and as
phishing-resistant (factors/assurance.py). As a second factor (``second``) after
the password the options list the person's credentials and user verification is
preferred only (presence is always required).

The challenge lives in this factor's state in the sign-in flow, with the
sign-in's id (``binding``): ``verify`` pops it, so an answer is good once and in
this sign-in only. The ceremonies themselves are in services/passkeys.py.
Results: ``NotMine`` without a ``credential``; ``Rejected`` with a reason
(``foreign_challenge``, ``no_challenge``, ``expired``, ``invalid``, ``unknown``,
``other_user``, ``disabled``, ``sign_count``); ``Accepted`` with amr ``hwk`` (a
device-bound key) or ``swk`` (a synced passkey), plus ``user`` when verified.
"""

from __future__ import annotations

from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _

from idp.factors import assurance
from idp.factors.base import Accepted, Attempt, NotMine, Rejected, Result
from idp.services import passkeys


class WebAuthnFactor:
    id = "webauthn"
    amr = ("hwk",)  # or ``swk`` for a synced passkey; ``user`` when verified
    identifies = True
    second = True

    def is_enrolled(self, user: Any) -> bool:
        return passkeys.has_passkey(user)

    def enrolled_rows(self, user_id: Any):
        """The person's passkeys (``base.enrolled_ids``)."""
        return passkeys.credentials_query(user_id)

    def is_available(self, tenant: Any) -> bool:
        return True

    def begin(self, user: Any, state: dict, attempt: Attempt) -> dict:
        """A new challenge for this sign-in: passwordless (no ``user``: UV required) or the
        person's own passkeys."""
        options = passkeys.authentication_options(user, state, require_uv=user is None)
        state["binding"] = attempt.binding
        return {"options": options}

    def verify(self, user: Any, submitted: dict, state: dict, attempt: Attempt) -> Result:
        if "credential" not in submitted:
            return NotMine()
        user_id = getattr(user, "id", None)
        binding = state.pop("binding", None)
        if binding != attempt.binding:
            state.clear()
            return Rejected("foreign_challenge", user_id=user_id)
        try:
            verified = passkeys.authenticate(submitted["credential"], state, user=user,
                                             ip=attempt.ip)
        except passkeys.PasskeyError as refused:
            return Rejected(refused.reason, user_id=user_id or refused.user_id)
        credential = verified.credential
        return Accepted(credential.user_id,
                        assurance.passkey_amr(verified.user_verified, credential.backup_eligible))

    def enrol_start(self, user: Any, state: dict) -> dict:
        return {"options": passkeys.registration_options(user, state)}

    def enrol_confirm(self, user: Any, submitted: dict, state: dict) -> Result:
        """Attach the new credential and tell the person by email (the caller commits)."""
        with force_locale(user.locale or "en"):  # stored: in the person's language
            default_name = _("Passkey %(number)s", number=len(passkeys.credentials_of(user)) + 1)
        try:
            row = passkeys.register(user, submitted.get("credential"), state,
                                    name=submitted.get("name"), default_name=default_name,
                                    ip=submitted.get("ip"))
        except passkeys.PasskeyError as refused:
            return Rejected(refused.reason, user_id=user.id)
        passkeys.notify(user, "passkey_added", row.name)
        # Recovery codes come with the first strong factor: the account page issues them
        # (services/recovery_codes.py; a factor may not import the registry it is in).
        return Accepted(user.id, assurance.passkey_amr(row.user_verified, row.backup_eligible))

    def remove(self, user: Any) -> None:
        passkeys.remove_all(user)
