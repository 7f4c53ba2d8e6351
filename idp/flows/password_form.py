"""The set-password form shared by every page that sets one (invitation, reset, registration).

Renders with ``templates/flows/_password_fields.html`` and ``static/password.js``:
the page lists the policy's rules, the script checks them live and can generate
a password; the server checks them again (``services.password_policy``) and
lists exactly the rules that failed. Usage in a view::

    form = password_form.read(request.form)
    if form.problems: ... render(..., pw=password_form.context(policy, email, form.problems))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _

from idp.services.password_policy import MAX_LENGTH, PasswordPolicy

# Longer fields are refused before any work (the policy allows MAX_LENGTH characters).
MAX_FIELD = MAX_LENGTH


@dataclass
class PasswordForm:
    password: str
    problems: list[str] = field(default_factory=list)  # "missing", "mismatch", rule codes


def read(form) -> PasswordForm:
    """new_password and confirm_password from a submitted form; only the form's own problems."""
    password = form.get("new_password", "")
    confirm = form.get("confirm_password", "")
    if not password or not confirm:
        return PasswordForm("", ["missing"])
    if len(password) > MAX_FIELD:
        return PasswordForm("", ["max_length"])
    if password != confirm:
        return PasswordForm("", ["mismatch"])
    return PasswordForm(password)


def rule_label(code: str, policy: PasswordPolicy) -> str:
    labels = {
        "min_length": lambda: _("At least %(count)d characters", count=policy.min_length),
        "max_length": lambda: _("At most %(count)d characters", count=MAX_LENGTH),
        "upper": lambda: _("At least 1 uppercase letter"),
        "lower": lambda: _("At least 1 lowercase letter"),
        "digit": lambda: _("At least 1 number"),
        "symbol": lambda: _("At least 1 symbol, such as ! ? # or -"),
        "common": lambda: _("Not a commonly used password"),
        "contains_email": lambda: _("Does not contain your email address"),
        "missing": lambda: _("Enter your new password in both fields."),
        "mismatch": lambda: _("The two passwords do not match."),
    }
    return labels[code]()


def rules_of(policy: PasswordPolicy, email: str | None) -> list[str]:
    """The rules the page lists, in the order violations() reports them."""
    codes = ["min_length"]
    codes += [code for code, required in (("upper", policy.require_upper),
                                          ("lower", policy.require_lower),
                                          ("digit", policy.require_digit),
                                          ("symbol", policy.require_symbol)) if required]
    codes.append("common")
    if len(email_local(email)) >= 3:
        codes.append("contains_email")
    return codes


def email_local(email: str | None) -> str:
    return (email or "").split("@")[0].lower()


def context(policy: PasswordPolicy, email: str | None = None,
            problems: list[str] | None = None) -> dict:
    """What _password_fields.html needs: the rules, their server verdicts, the errors."""
    problems = list(problems or [])
    rules = [{"code": code, "label": rule_label(code, policy), "failed": code in problems}
             for code in rules_of(policy, email)]
    return {
        "policy": policy,
        "email": email,
        "email_local": email_local(email) if len(email_local(email)) >= 3 else "",
        "rules": rules,
        "errors": [rule_label(code, policy) for code in problems],
        "mismatch": "mismatch" in problems,
        "max_length": MAX_FIELD,
    }
