"""Attempt caps shared by the factors that check a typed code (emailed code, TOTP,
recovery code): per sign-in and per account.

- Per sign-in: wrong tries are counted in the factor's state in the flow; after
  IDP_LOGIN_CODE_TRIES the sign-in ends (``restart``), as the emailed code always did.
- Per account: every answer to a typed-code factor is a hit on one sliding-window counter
  per person (services/throttle.py: the database or Redis, so every worker shares it):
  more than IDP_FACTOR_ACCOUNT_TRIES in IDP_FACTOR_ACCOUNT_WINDOW seconds and no code is
  checked, whichever factor it is for, until the window moves on. Starting a new sign-in
  does not reset it (the per-sign-in count would).
"""

from __future__ import annotations

from flask import current_app

from idp.factors.base import Rejected
from idp.services.throttle import counter_for


def account_retry_after(user_id: int) -> int:
    """Count one answer for this person; seconds to wait (0: go on and check it)."""
    config = current_app.config
    decision = counter_for(current_app).hit(f"factor:acct:{user_id}",
                                            config["IDP_FACTOR_ACCOUNT_TRIES"],
                                            config["IDP_FACTOR_ACCOUNT_WINDOW"])
    return 0 if decision.allowed else decision.retry_after


def wrong_try(state: dict, user_id: int, reason: str = "wrong") -> Rejected:
    """One more wrong try in this sign-in; ends it after IDP_LOGIN_CODE_TRIES."""
    state["tries"] = int(state.get("tries") or 0) + 1
    if state["tries"] >= current_app.config["IDP_LOGIN_CODE_TRIES"]:
        state.clear()
        return Rejected("too_many_tries", user_id=user_id, restart=True)
    return Rejected(reason, user_id=user_id)
