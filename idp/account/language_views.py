"""The language switcher of every hosted page (templates/_language_switcher.html).

``POST /language`` (CSRF) with ``locale`` and ``next``: the choice is kept in the
session (signed cookie, also for a person not signed in) and saved on the
signed-in person (``User.locale``), then the browser goes back to ``next``, a
path of this site that answers GET, else ``/`` (no open redirect). The account
page's form (``/account/language``) is the same handler. Which language wins:
services/locale.py.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, has_request_context, redirect, request, session
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from idp.extensions import db
from idp.services.locale import LANGUAGE_NAMES, save_choice

bp = Blueprint("language", __name__)
MAX_NEXT = 2000


def safe_next(value: str | None) -> str:
    """``value`` when it is a path of this site that answers GET; else ``/``."""
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
    except HTTPException:
        return "/"
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


@bp.route("/language", methods=["POST"])
def switch():
    apply_choice(request.form.get("locale", ""))
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.app_context_processor
def _switcher() -> dict:
    def current_path() -> str:
        return request.full_path.rstrip("?") if has_request_context() else "/"

    languages = [(code, LANGUAGE_NAMES[code]) for code in current_app.config["IDP_LOCALES"]
                 if code in LANGUAGE_NAMES]
    return {"switcher_languages": languages, "switcher_next": current_path}
