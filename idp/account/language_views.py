"""The language switcher of every hosted page (templates/_language_switcher.html).

``POST /language`` with ``locale`` and ``next``: the choice is kept in the
session (signed cookie, also for a person not signed in) and saved on the
signed-in person (``User.locale``), then the browser goes back to ``next``, a
path of this site that does not refuse GET, else ``/`` (no open redirect). The account
page's form (``/account/language``) is the same handler. Which language wins:
services/locale.py.

Cross-site requests are refused (CSRF) in one of two ways. A page that has a
form already holds a CSRF token, and the switcher sends it: it must be valid. A
page with no form (the home page, an error page) sets no cookie (anonymous GETs
stay cookie-less, services/sessions.py), so it has no token to send: the
browser's ``Sec-Fetch-Site: same-origin`` (Fetch Metadata, which every current
browser sends and no cross-site page can forge) must then say the form is ours.
Neither: the CSRF error page, nothing changes.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, has_request_context, redirect, request, session
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect
from wtforms import ValidationError

from idp.extensions import db
from idp.services.locale import LANGUAGE_NAMES, save_choice

bp = Blueprint("language", __name__)
MAX_NEXT = 2000


def safe_next(value: str | None) -> str:
    """``value`` when it is a path of this site (one leading slash, nothing that could
    make it another host) that does not refuse GET; else ``/``. A path with no route is
    kept: its page is the 404, now in the chosen language."""
    target = (value or "").strip()
    if (not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > MAX_NEXT
            or any(ord(c) < 33 or c == "\\" for c in target)):
        return "/"
    path = target.split("?", 1)[0].split("#", 1)[0]
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(path, method="GET")
    except RequestRedirect:
        return target  # a rule that redirects (a missing slash): still ours
    except MethodNotAllowed:
        return "/"  # a POST-only address: its page cannot be shown again
    except NotFound:
        return target
    return target


def apply_choice(choice: str) -> bool:
    """Keep ``choice`` for this session and the signed-in person (commits); False if unknown."""
    language = save_choice(g.get("user"), choice, current_app.config["IDP_LOCALES"])
    if language is None:
        return False
    session["locale"] = language
    if g.get("user") is not None:
        db.session.commit()
    return True


def from_our_page() -> bool:
    """The CSRF check of the switcher (module docstring)."""
    token = request.form.get("csrf_token")
    if token:
        try:
            validate_csrf(token)
        except ValidationError:
            return False
        return True
    return request.headers.get("Sec-Fetch-Site") == "same-origin"


@bp.route("/language", methods=["POST"])
def switch():
    if not from_our_page():
        raise CSRFError("The language form did not come from this site.")
    apply_choice(request.form.get("locale", ""))
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.app_context_processor
def _switcher() -> dict:
    def current_path() -> str:
        return request.full_path.rstrip("?") if has_request_context() else "/"

    languages = [(code, LANGUAGE_NAMES[code]) for code in current_app.config["IDP_LOCALES"]
                 if code in LANGUAGE_NAMES]
    return {"switcher_languages": languages, "switcher_next": current_path}
