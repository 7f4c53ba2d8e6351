"""Views stay thin: the SQL and the commits live in services."""

from __future__ import annotations

import inspect


def test_machine_endpoints_leave_sql_and_commits_to_the_token_service():
    """userinfo, revocation and introspection are thin over services/tokens.py."""
    from idp.oauth import endpoints

    for view in (endpoints.userinfo, endpoints.revoke, endpoints.introspect):
        source = inspect.getsource(view)
        assert "db.session" not in source and "select(" not in source, view.__name__
