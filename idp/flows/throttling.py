"""Per-IP limits on the POSTs that check a password or send mail: 429 with Retry-After.

One table, checked before the view runs. The client address is
``request.remote_addr``: X-Forwarded-For counts only through ProxyFix, which
security.py installs for IDP_TRUSTED_PROXIES hops and never by default.
IPv6 clients are counted per /64 (one customer's whole network), IPv4 per
address. Counters live in the database or Redis (services/throttle.py), so
every worker and node shares them.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from flask import Flask, current_app, render_template, request
from flask_babel import format_timedelta
from flask_babel import gettext as _

from idp.services.throttle import counter_for

# endpoint -> (counter scope, limit setting, window setting). Other flows add their POSTs here.
LIMITS: dict[str, tuple[str, str, str]] = {
    "flows.login": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "flows.login_code": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "flows.login_code_resend": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "flows.login_passkey": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "flows.login_passkey_identify": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "flows.login_passkey_enrol": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    # Challenges (the login page asks for one as it loads, for the browser's autofill).
    "flows.login_passkey_options": ("passkey", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "second_factor.choose": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "second_factor.no_access": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "security.confirm": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "security.totp_confirm": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "registration.tenant_login": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "account.change_email": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "account_passkeys.confirm": ("login", "IDP_LOGIN_IP_LIMIT", "IDP_LOGIN_IP_WINDOW"),
    "recovery.forgot": ("forgot", "IDP_FORGOT_IP_LIMIT", "IDP_FORGOT_IP_WINDOW"),
    "recovery.reset": ("link", "IDP_LINK_IP_LIMIT", "IDP_LINK_IP_WINDOW"),
    "invitation.complete": ("link", "IDP_LINK_IP_LIMIT", "IDP_LINK_IP_WINDOW"),
}


def client_key(address: str | None) -> str:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def too_many(retry_after: int):
    wait = format_timedelta(timedelta(seconds=max(1, retry_after)), threshold=1.0,
                            add_direction=False)
    message = _("Too many attempts from your network. Please try again in %(wait)s.", wait=wait)
    response = current_app.make_response(
        (render_template("flows/too_many_requests.html", message=message), 429))
    response.headers["Retry-After"] = str(max(1, int(retry_after)))
    response.headers["Cache-Control"] = "no-store"
    return response


def _limit():
    if request.method != "POST":
        return None
    spec = LIMITS.get(request.endpoint or "")
    if spec is None:
        return None
    scope, limit_key, window_key = spec
    config = current_app.config
    decision = counter_for(current_app).hit(f"ip:{scope}:{client_key(request.remote_addr)}",
                                            config[limit_key], config[window_key])
    return None if decision.allowed else too_many(decision.retry_after)


def init_app(app: Flask) -> None:
    app.before_request(_limit)
