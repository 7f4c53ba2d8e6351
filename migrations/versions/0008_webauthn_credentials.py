"""webauthn credentials: passkeys and security keys, a credential id unique across users

Revision ID: 0008
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0009'
branch_labels = None
depends_on = None

Epoch = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    op.create_table(
        'webauthn_credentials',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('credential_id', sa.String(length=1400), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('sign_count', sa.BigInteger(), nullable=False),
        sa.Column('transports', JSONType, nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('user_handle', sa.String(length=128), nullable=False),
        sa.Column('aaguid', sa.String(length=36), nullable=True),
        sa.Column('user_verified', sa.Boolean(), nullable=False),
        sa.Column('backup_eligible', sa.Boolean(), nullable=False),
        sa.Column('backed_up', sa.Boolean(), nullable=False),
        sa.Column('created_at', Epoch, nullable=False),
        sa.Column('last_used_at', Epoch, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_webauthn_credentials_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webauthn_credentials')),
        sa.UniqueConstraint('credential_id', name=op.f('uq_webauthn_credentials_credential_id')),
    )
    with op.batch_alter_table('webauthn_credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webauthn_credentials_user_id'), ['user_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_webauthn_credentials_user_handle'),
                              ['user_handle'], unique=False)


def downgrade():
    with op.batch_alter_table('webauthn_credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webauthn_credentials_user_handle'))
        batch_op.drop_index(batch_op.f('ix_webauthn_credentials_user_id'))
    op.drop_table('webauthn_credentials')
