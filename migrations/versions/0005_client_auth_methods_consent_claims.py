"""client auth methods as a list (both secret methods unless pinned); claims in consents

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

# Clients registered with the old default (client_secret_basic) could not be told apart
# from clients pinned to it: they all accept both secret methods now, as new clients do.
METHODS = {
    'client_secret_basic': ['client_secret_basic', 'client_secret_post'],
    'client_secret_post': ['client_secret_post'],
    'private_key_jwt': ['private_key_jwt'],
    'none': ['none'],
}

# Plain ADD/DROP COLUMN, no batch: on SQLite a batch rebuild drops and recreates the table,
# and with foreign keys on, dropping oauth_clients would cascade to grants and tokens.


def _clients(*columns):
    return sa.table('oauth_clients', *columns)


def upgrade():
    op.add_column('oauth_clients', sa.Column(
        'token_endpoint_auth_methods', JSONType, nullable=False, server_default=sa.text("'[]'")))
    clients = _clients(sa.column('token_endpoint_auth_method', sa.String),
                       sa.column('token_endpoint_auth_methods', JSONType))
    for old, new in METHODS.items():
        op.execute(clients.update().where(clients.c.token_endpoint_auth_method == old)
                   .values(token_endpoint_auth_methods=new))
    op.drop_column('oauth_clients', 'token_endpoint_auth_method')
    op.add_column('oauth_consents', sa.Column('claims', sa.Text(), nullable=False,
                                              server_default=''))


def downgrade():
    op.drop_column('oauth_consents', 'claims')
    op.add_column('oauth_clients', sa.Column(
        'token_endpoint_auth_method', sa.String(length=40), nullable=False,
        server_default='client_secret_basic'))
    clients = _clients(sa.column('id', sa.Integer), sa.column('token_endpoint_auth_method', sa.String),
                       sa.column('token_endpoint_auth_methods', JSONType))
    connection = op.get_bind()
    rows = connection.execute(sa.select(clients.c.id, clients.c.token_endpoint_auth_methods)).all()
    for row_id, methods in rows:
        if len(methods or []) == 1:
            connection.execute(clients.update().where(clients.c.id == row_id)
                               .values(token_endpoint_auth_method=methods[0]))
    op.drop_column('oauth_clients', 'token_endpoint_auth_methods')
