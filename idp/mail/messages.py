"""Message builders: one kind per email, rendered from templates/mail/, localized and branded.

Each kind has a text and an HTML body fragment (``templates/mail/<kind>.txt`` and
``.html``), rendered once per language of the message inside
``flask_babel.force_locale``, then wrapped in the branded layout
(``_layout.txt`` / ``_layout.html``). Most messages are in the recipient's
language; the welcome email is bilingual, English then French, like the seeds'.
Subjects are gettext strings here, so they are translated with the bodies.

Branding is services/branding.py's (``Tenant.settings``: the uploaded logo at
its absolute address, ``brand_name``, ``support_email``, ``brand_color``), else
the ``IDP_BRAND_NAME`` / ``IDP_MAIL_LOGO_URL`` / ``IDP_SUPPORT_EMAIL`` settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from babel.units import format_unit
from flask import current_app, has_request_context, render_template
from flask_babel import force_locale
from flask_babel import format_datetime as babel_format_datetime
from flask_babel import gettext as _
from markupsafe import Markup

from idp.mail.headers import (
    MailError,
    clean_text,
    mailbox,
    mask_email,
    parse_mailbox,
    validate_address,
)
from idp.mail.outbox import enqueue
from idp.models.mail import OutboxMessage

BILINGUAL = ("en", "fr")
DEFAULT_COLOR = "#1f4e8c"
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_MESSAGE_ID = re.compile(r"^<[!-;=?-~]{1,200}@[!-;=?-~]{1,200}>$")


@dataclass(frozen=True)
class Kind:
    name: str
    subject: Callable[[dict], str]  # called inside force_locale, once per language
    required: tuple[str, ...] = ()
    links: tuple[str, ...] = ()  # context keys that must be http(s) URLs
    bilingual: bool = False


# factor_changed: one subject per change (services/factor_notices.py lists them).
FACTOR_CHANGE_SUBJECTS: dict[str, Callable[[], str]] = {
    "totp_added": lambda: _("An authenticator app was added to your account"),
    "totp_removed": lambda: _("An authenticator app was removed from your account"),
    "recovery_codes_issued": lambda: _("New recovery codes for your account"),
    "recovery_code_used": lambda: _("A recovery code was used to sign in"),
    "factors_reset": lambda: _("Your two-step verification was reset"),
}

KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("welcome", lambda c: _("Welcome to %(brand)s", brand=c["brand"]),
         required=("link", "expires_hours"), links=("link",), bilingual=True),
    Kind("verify_email", lambda c: _("Confirm your email address"),
         required=("link", "expires_hours"), links=("link",)),
    Kind("password_reset", lambda c: _("Reset your password"),
         required=("link", "expires_minutes"), links=("link",)),
    Kind("password_changed", lambda c: _("Your password was changed"),
         required=("when",), links=("reset_link",)),
    Kind("account_locked", lambda c: _("Your account has been locked"),
         required=("reset_link", "locked_until"), links=("reset_link",)),
    Kind("account_exists_notice", lambda c: _("You already have an account"),
         required=("login_link", "reset_link"), links=("login_link", "reset_link")),
    Kind("added_to_tenant", lambda c: _("You now have access to %(brand)s", brand=c["brand"]),
         required=("login_link", "reset_link"), links=("login_link", "reset_link")),
    Kind("email_change_verify", lambda c: _("Confirm your new email address"),
         required=("link",), links=("link",)),
    Kind("email_change_notice", lambda c: _("Your email address is being changed"),
         required=("new_email",)),
    Kind("login_code", lambda c: _("Your sign-in code"),
         required=("code", "expires_minutes")),
    Kind("passkey_added", lambda c: _("A passkey was added to your account"),
         required=("passkey_name", "when")),
    Kind("passkey_removed", lambda c: _("A passkey was removed from your account"),
         required=("passkey_name", "when")),
    Kind("factor_changed", lambda c: FACTOR_CHANGE_SUBJECTS[c["change"]](),
         required=("change", "when"), links=("security_link", "reset_link")),
    Kind("factor_reset_request", lambda c: _("A person cannot use their authenticator app"),
         required=("person_email", "when")),
    Kind("test", lambda c: _("Test message from %(brand)s", brand=c["brand"])),
)}


@dataclass(frozen=True)
class RenderedMessage:
    kind: str
    locale: str  # the message's language; "en" for the bilingual welcome
    locales: tuple[str, ...]
    subject: str
    text: str
    html: str


def resolve_locale(locale: str | None) -> str:
    """The recipient's language if supported, else the request's, else the default."""
    config = current_app.config
    supported = list(config["IDP_LOCALES"])
    if locale:
        language = str(locale).replace("_", "-").split("-")[0].lower()
        if language in supported:
            return language
    elif has_request_context():
        from flask_babel import get_locale

        try:
            current = str(get_locale() or "")
        except Exception:  # noqa: BLE001 - no usable request locale: use the default
            current = ""
        if current.split("_")[0] in supported:
            return current.split("_")[0]
    default = config["BABEL_DEFAULT_LOCALE"]
    return default if default in supported else supported[0]


def _http_url(value: object) -> str | None:
    url = str(value or "").strip()
    if url.lower().startswith(("https://", "http://")) and not any(
            c.isspace() or ord(c) < 32 for c in url):
        return url
    return None


def branding(tenant=None) -> dict:
    """Brand name, logo, support address and colour for a tenant (or the deployment):
    services/branding.py's, with the logo as an absolute URL a mail reader can fetch."""
    from idp.services.branding import branding as tenant_branding

    config = current_app.config
    brand = tenant_branding(tenant) if tenant is not None else None
    name = clean_text(brand.name if brand else config["IDP_BRAND_NAME"], 120)
    support = (brand.support_email if brand else None) or config["IDP_SUPPORT_EMAIL"]
    try:
        support = validate_address(support) if support else None
    except MailError:
        current_app.logger.warning("ignoring an invalid support address for %r", name)
        support = None
    logo = brand.logo_url if brand else None
    if logo and logo.startswith("/"):
        logo = config["IDP_ISSUER"] + logo
    color = (getattr(tenant, "settings", None) or {}).get("brand_color") or "" \
        if tenant is not None else ""
    return {
        "brand": name or "Identity",
        "logo_url": _http_url(logo or config["IDP_MAIL_LOGO_URL"]),
        "support_email": support,
        "brand_color": color if _COLOR.match(color) else DEFAULT_COLOR,
    }


def _format_when(value) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(int(value), UTC)


def _context(kind: Kind, to: str, tenant, context: dict) -> dict:
    missing = [key for key in kind.required if context.get(key) in (None, "")]
    if missing:
        raise MailError(f"{kind.name}: missing {', '.join(missing)}")
    ctx = dict(context)
    for key in kind.links:
        if ctx.get(key) in (None, ""):
            continue
        url = _http_url(ctx[key])
        if url is None:
            raise MailError(f"{kind.name}: {key} must be an http(s) URL")
        ctx[key] = url
    brand = branding(tenant)
    if ctx.get("support_email"):
        brand["support_email"] = validate_address(ctx["support_email"])
    if ctx.get("tenant_name"):
        brand["brand"] = clean_text(ctx["tenant_name"], 120) or brand["brand"]
    ctx.update(brand)
    ctx["user_email"] = ctx.get("user_email") or to
    ctx["name"] = clean_text(ctx.get("name") or "", 120) or None
    for key in ("expires_hours", "expires_minutes"):
        if ctx.get(key) is not None:
            ctx[key] = int(ctx[key])
    if "code" in ctx:
        ctx["code"] = clean_text(ctx["code"], 32)
    if kind.name == "factor_changed" and ctx["change"] not in FACTOR_CHANGE_SUBJECTS:
        raise MailError(f"factor_changed: unknown change {ctx['change']!r}")
    if "new_email" in ctx:
        ctx["new_email"] = mask_email(str(ctx["new_email"]))
    if "when" in kind.required:  # password_changed, passkey_added, passkey_removed
        ctx["when_dt"] = _format_when(ctx.get("when"))
    if kind.name == "account_locked":
        ctx["until_dt"] = _format_when(ctx["locked_until"])
    return ctx


def _duration(ctx: dict, locale: str) -> str | None:
    """"72 hours", "30 minutes", "72 heures": CLDR plural rules, no catalog plurals needed."""
    for key, unit in (("expires_hours", "duration-hour"), ("expires_minutes", "duration-minute")):
        if ctx.get(key) is not None:
            return format_unit(ctx[key], unit, length="long", locale=locale)
    return None


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def render_message(kind: str, *, to: str, locale: str | None = None, tenant=None,
                   bilingual: bool | None = None, **context) -> RenderedMessage:
    """Render subject, text and HTML for one message without storing anything.

    ``bilingual`` overrides the kind's choice (True: English then French, for a
    person whose language is unknown)."""
    spec = KINDS.get(kind)
    if spec is None:
        raise MailError(f"unknown message kind {kind!r}")
    language = resolve_locale(locale)
    both = spec.bilingual if bilingual is None else bilingual
    locales = BILINGUAL if both else (language,)
    ctx = _context(spec, to, tenant, context)
    subjects, texts, htmls = [], [], []
    for loc in locales:
        with force_locale(loc):
            local = dict(ctx, lang=loc)
            if "when_dt" in ctx:
                local["when"] = babel_format_datetime(ctx["when_dt"], "long")
            if "until_dt" in ctx:
                local["until"] = babel_format_datetime(ctx["until_dt"], "long")
            local["expires_in"] = _duration(ctx, loc)
            subjects.append(spec.subject(local))
            texts.append(render_template(f"mail/{kind}.txt", **local))
            htmls.append(Markup(render_template(f"mail/{kind}.html", **local)))  # noqa: S704
    subject = clean_text(" / ".join(dict.fromkeys(subjects)))
    with force_locale(locales[0]):
        text = render_template("mail/_layout.txt", sections=texts, subject=subject, **ctx)
        html = render_template("mail/_layout.html", sections=list(zip(locales, htmls, strict=True)),
                               subject=subject, lang=locales[0], **ctx)
    return RenderedMessage(kind=kind, locale="en" if both else language,
                           locales=tuple(locales), subject=subject, text=_tidy(text), html=html)


def enqueue_message(kind: str, to: str, *, locale: str | None, tenant=None,
                    bilingual: bool | None = None, **context) -> OutboxMessage:
    """Render a message and add it to the outbox in the current transaction (no commit).

    ``locale``: the recipient's language (``user.locale``); None uses the
    request's language, else the default. Raises MailError for an unknown kind,
    a missing context key, a non-http link or an unsafe address.
    """
    to = validate_address(to)
    rendered = render_message(kind, to=to, locale=locale, tenant=tenant, bilingual=bilingual,
                              **context)
    from_name, from_addr = parse_mailbox(current_app.config["IDP_MAIL_FROM"])
    brand = branding(tenant)
    headers = {
        "from_name": brand["brand"] if tenant is not None else (from_name or brand["brand"]),
        "from_addr": from_addr,
        "reply_to": context.get("support_email") or brand["support_email"],
        "message_id": make_msgid(domain=from_addr.rpartition("@")[2]),
        "content_language": ", ".join(rendered.locales),
    }
    if headers["reply_to"]:
        headers["reply_to"] = validate_address(headers["reply_to"])
    return enqueue(to, rendered.subject, rendered.text, rendered.html, tenant=tenant,
                   template=kind, locale=rendered.locale, headers=headers)


def build_mime(message, config) -> tuple[EmailMessage, str, list[str]]:
    """The MIME message for an outbox row (or a ClaimedMessage), its envelope sender and recipients.

    Every header value is validated again here: a row written by other code, or
    edited in the database, still cannot smuggle a header in.
    """
    headers = dict(message.headers or {})
    default_name, default_addr = parse_mailbox(config["IDP_MAIL_FROM"])
    from_addr = validate_address(headers.get("from_addr") or default_addr, dotted_domain=False)
    to = validate_address(message.to_address)
    mime = EmailMessage(policy=SMTP)
    mime["From"] = mailbox(headers.get("from_name") or default_name, from_addr)
    mime["To"] = Address(addr_spec=to)
    mime["Subject"] = clean_text(message.subject) or "(no subject)"
    created = datetime.fromtimestamp(int(message.created_at or 0), UTC) \
        if message.created_at else datetime.now(UTC)
    mime["Date"] = format_datetime(created)
    message_id = str(headers.get("message_id") or "")
    if not _MESSAGE_ID.match(message_id):
        message_id = make_msgid(domain=from_addr.rpartition("@")[2])
    mime["Message-ID"] = message_id
    if headers.get("reply_to"):
        mime["Reply-To"] = Address(addr_spec=validate_address(headers["reply_to"]))
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(message.text_body)
    if message.html_body:
        mime.add_alternative(message.html_body, subtype="html")
    # After the bodies: set_content() clears every Content-* header.
    language = clean_text(headers.get("content_language") or message.locale or "", 40)
    if language and re.fullmatch(r"[A-Za-z-]+(, [A-Za-z-]+)*", language):
        mime["Content-Language"] = language
    return mime, from_addr, [to]
