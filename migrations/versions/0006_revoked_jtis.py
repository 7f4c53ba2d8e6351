"""revoked jtis: client_credentials access tokens have no row; revoking one lists its jti

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

Epoch = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'oauth_revoked_jtis',
        sa.Column('jti', sa.String(length=64), nullable=False),
        sa.Column('expires_at', Epoch, nullable=False),
        sa.PrimaryKeyConstraint('jti', name=op.f('pk_oauth_revoked_jtis')),
    )
    op.create_index(op.f('ix_oauth_revoked_jtis_expires_at'), 'oauth_revoked_jtis',
                    ['expires_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_oauth_revoked_jtis_expires_at'), table_name='oauth_revoked_jtis')
    op.drop_table('oauth_revoked_jtis')
