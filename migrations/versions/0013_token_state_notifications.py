"""token state notifications: PostgreSQL tells every process when a committed write may
change what introspection and userinfo read (idp/services/state_cache.py)

A statement-level trigger on each table that the access-token select reads calls
pg_notify('idp_token_state', <table>). A notification is sent when its transaction
commits, and never if it rolls back. Only writes that can change an existing token's
state fire it: a new token or grant row cannot, and neither can a refresh token's
rotation (rotated_at). Every process that caches token state listens on the channel.
Nothing happens on SQLite, where nothing is cached.

Revision ID: 0013
Revises: 0012
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

CHANNEL = 'idp_token_state'
FUNCTION = 'idp_token_state_changed'
TRIGGER = 'idp_token_state'
# table -> the events that fire the trigger (tests/http/test_state_cache.py checks that
# they cover every column the access-token select reads)
EVENTS = {
    'oauth_tokens': 'UPDATE OF id, jti, client_id, user_id, tenant_id, grant_id, scope,'
                    ' issued_at, access_expires_at, revoked_at OR DELETE OR TRUNCATE',
    'oauth_grants': 'UPDATE OF id, revoked_at, claims OR DELETE OR TRUNCATE',
    'users': 'UPDATE OF id, sub, active, email, email_verified, given_name, family_name,'
             ' locale, updated_at, phone_number, phone_number_verified OR DELETE OR TRUNCATE',
    'memberships': 'INSERT OR UPDATE OR DELETE OR TRUNCATE',
    'tenants': 'UPDATE OF id, slug, name, active OR DELETE OR TRUNCATE',
    'oauth_clients': 'INSERT OR UPDATE OF id, client_id, tenant_id OR DELETE OR TRUNCATE',
    'oauth_client_tenants': 'INSERT OR UPDATE OR DELETE OR TRUNCATE',
    'oauth_revoked_jtis': 'INSERT OR UPDATE OR DELETE OR TRUNCATE',
}


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(f"""
        CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$""")
    for table, events in EVENTS.items():
        op.execute(f"CREATE TRIGGER {TRIGGER} AFTER {events} ON {table}"
                   f" FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()")


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in EVENTS:
        op.execute(f"DROP TRIGGER {TRIGGER} ON {table}")
    op.execute(f"DROP FUNCTION {FUNCTION}()")
