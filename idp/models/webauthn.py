"""WebAuthn credentials (passkeys and security keys) registered to a person.

A credential id is unique across every user: the browser names the credential,
and a passwordless sign-in finds its owner by that id alone. ``user_handle`` is
the WebAuthn ``user.id`` given at registration (random, the same for every
passkey of one person); the authenticator returns it with a discoverable
credential and it must match. ``sign_count`` is the last counter the
authenticator reported (0: it keeps none); ``backup_eligible`` / ``backed_up``
are the BE / BS flags (a synced passkey), ``user_verified`` whether the
authenticator ever verified the person (PIN, biometrics).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models._types import Epoch, JSONType, now

# base64url of at most 1023 bytes (WebAuthn's limit on a credential id).
CREDENTIAL_ID_LENGTH = 1400
NAME_LENGTH = 64


class WebAuthnCredential(db.Model):
    __tablename__ = "webauthn_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         nullable=False, index=True)
    credential_id: Mapped[str] = mapped_column(String(CREDENTIAL_ID_LENGTH), unique=True,
                                               nullable=False)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sign_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    transports: Mapped[list] = mapped_column(JSONType, nullable=False, default=list)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), nullable=False)
    user_handle: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    aaguid: Mapped[str | None] = mapped_column(String(36))
    user_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    backup_eligible: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    backed_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[int] = mapped_column(Epoch, nullable=False, default=now)
    last_used_at: Mapped[int | None] = mapped_column(Epoch)

    def __repr__(self) -> str:
        return f"<WebAuthnCredential {self.id} of user {self.user_id}>"
