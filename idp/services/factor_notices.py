"""The email a person gets each time their second factors change (added, removed, recovery
codes issued or used, reset by an admin), so a change they did not make does not go
unnoticed."""

from __future__ import annotations

import time
from typing import Any

from idp.services.accounts import tenants_of
from idp.services.links import external_url

CHANGES = ("totp_added", "totp_removed", "recovery_codes_issued", "recovery_code_used",
           "factors_reset")


def notify(user: Any, change: str) -> None:
    """Queue the notice in the current transaction (the caller commits)."""
    from idp.mail import enqueue_message

    if change not in CHANGES:
        raise ValueError(f"unknown factor change {change!r}")
    tenant = next(iter(tenants_of(user)), None)
    enqueue_message("factor_changed", user.email, locale=user.locale, tenant=tenant,
                    change=change, when=int(time.time()),
                    security_link=external_url("security.page"),
                    reset_link=external_url("recovery.forgot"))
