"""grant claims_locales: the languages an authorization asked its claims in (org_name)

Revision ID: 0012
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_grants') as batch_op:
        batch_op.add_column(sa.Column('claims_locales', sa.String(length=100), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_grants') as batch_op:
        batch_op.drop_column('claims_locales')
