"""The tenant step: which of a person's companies a sign-in (or a session) is for.

One rule decides, for the pending sign-in (flows/signin.py: after the first
factor, before the second, so the picked tenant's MFA policy decides the second
factor) and for a signed-in session (flows/authorization.py: ``prompt=select_account``,
**Switch account**, a client that does not serve the session's company):

- the candidates are the person's memberships in active tenants the client serves
  (services/memberships.py ``served_memberships``);
- ``organization=<slug>`` naming one of them picks it; a slug that names none of
  them (an unknown tenant, or one the person is not in) is ignored, so the answer
  is the same whether that tenant exists or not;
- then the company already in use (the session's), then a single candidate, pick
  themselves, unless the person asked to choose (``select_account``);
- otherwise the person picks: ``chosen`` checks the posted value (an integer id among
  the candidates, else ``InvalidChoice``, a 400 with a translated message).

The session remembers the company in use (``tenant_id``) and whether the person
closed the notice that names it (``notice_closed``, until the next sign-in, which
clears the session).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idp.models import Membership

SESSION_TENANT = "tenant_id"
NOTICE_CLOSED = "notice_closed"
MAX_CHOICE_LENGTH = 20


class InvalidChoice(ValueError):
    """The posted tenant is not one of those offered (forged, stale, or not an id)."""


@dataclass
class Decision:
    """The tenant step's answer: a membership picked itself, the person must pick
    (``pick``), or there is nothing to pick (neither)."""

    membership: Membership | None = None
    pick: bool = False


def decide(candidates: Sequence[Membership], *, organization: str | None = None,
           in_use: int | None = None, select_account: bool = False) -> Decision:
    """Apply the rule above to the candidates."""
    if not candidates:
        return Decision()
    if organization:
        for membership in candidates:
            if membership.tenant.slug == organization:
                return Decision(membership)
    if not select_account:
        for membership in candidates:
            if in_use is not None and membership.tenant_id == in_use:
                return Decision(membership)
        if len(candidates) == 1:
            return Decision(candidates[0])
    return Decision(pick=True)


def chosen(candidates: Sequence[Membership], raw: str | None) -> Membership:
    """The membership a picker POST names, or InvalidChoice."""
    value = (raw or "").strip()
    if not value or len(value) > MAX_CHOICE_LENGTH or not value.isascii() or not value.isdigit():
        raise InvalidChoice("not a tenant id")
    for membership in candidates:
        if membership.tenant_id == int(value):
            return membership
    raise InvalidChoice("not offered")


def in_use(session) -> int | None:
    """The company the signed-in session works for (None: not chosen yet)."""
    value = session.get(SESSION_TENANT) if session.get("uid") else None
    return value if isinstance(value, int) else None


def use(session, tenant_id: int | None) -> None:
    """The session works for this company now; the notice shows again."""
    if tenant_id is None:
        session.pop(SESSION_TENANT, None)
    elif session.get(SESSION_TENANT) != tenant_id:
        session[SESSION_TENANT] = tenant_id
        session.pop(NOTICE_CLOSED, None)
