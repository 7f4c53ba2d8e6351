"""tenants can be disabled; a shared client can serve a listed set of tenants

Revision ID: 0009
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0010'
branch_labels = None
depends_on = None

# Plain ADD/DROP COLUMN, no batch: on SQLite a batch rebuild drops and recreates the table,
# and with foreign keys on, dropping tenants would cascade to memberships and clients.


def upgrade():
    op.add_column('tenants', sa.Column('active', sa.Boolean(), nullable=False,
                                       server_default=sa.true()))
    op.create_table(
        'oauth_client_tenants',
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.id'],
                                name=op.f('fk_oauth_client_tenants_client_id_oauth_clients'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_oauth_client_tenants_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('client_id', 'tenant_id', name=op.f('pk_oauth_client_tenants')),
    )
    op.create_index(op.f('ix_oauth_client_tenants_tenant_id'), 'oauth_client_tenants',
                    ['tenant_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_oauth_client_tenants_tenant_id'), table_name='oauth_client_tenants')
    op.drop_table('oauth_client_tenants')
    op.drop_column('tenants', 'active')
