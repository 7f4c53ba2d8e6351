"""second factors: authenticator app (TOTP), recovery codes, factor reset requests,
trusted browsers

Revision ID: 0007
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0011'
branch_labels = None
depends_on = None

Epoch = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    op.create_table(
        'totp_credentials',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('secret_encrypted', sa.Text(), nullable=False),
        sa.Column('last_step', Epoch, server_default='0', nullable=False),
        sa.Column('created_at', Epoch, nullable=False),
        sa.Column('last_used_at', Epoch, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_totp_credentials_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_totp_credentials')),
        sa.UniqueConstraint('user_id', name=op.f('uq_totp_credentials_user_id')),
    )
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', Epoch, nullable=False),
        sa.Column('used_at', Epoch, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_recovery_codes_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_recovery_codes_code_hash')),
    )
    op.create_index(op.f('ix_recovery_codes_user_id'), 'recovery_codes', ['user_id'],
                    unique=False)
    op.create_table(
        'factor_reset_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', Epoch, nullable=False),
        sa.Column('resolved_at', Epoch, nullable=True),
        sa.Column('resolved_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['resolved_by'], ['users.id'],
                                name=op.f('fk_factor_reset_requests_resolved_by_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_factor_reset_requests_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_factor_reset_requests_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_factor_reset_requests')),
    )
    op.create_index(op.f('ix_factor_reset_requests_tenant_id'), 'factor_reset_requests',
                    ['tenant_id'], unique=False)
    op.create_index(op.f('ix_factor_reset_requests_user_id'), 'factor_reset_requests',
                    ['user_id'], unique=False)
    op.create_table(
        'trusted_browsers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('factors', JSONType, nullable=False),
        sa.Column('label', sa.String(length=200), nullable=True),
        sa.Column('created_at', Epoch, nullable=False),
        sa.Column('expires_at', Epoch, nullable=False),
        sa.Column('last_used_at', Epoch, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_trusted_browsers_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_trusted_browsers')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_trusted_browsers_token_hash')),
    )
    op.create_index(op.f('ix_trusted_browsers_user_id'), 'trusted_browsers', ['user_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_trusted_browsers_user_id'), table_name='trusted_browsers')
    op.drop_table('trusted_browsers')
    op.drop_index(op.f('ix_factor_reset_requests_user_id'), table_name='factor_reset_requests')
    op.drop_index(op.f('ix_factor_reset_requests_tenant_id'), table_name='factor_reset_requests')
    op.drop_table('factor_reset_requests')
    op.drop_index(op.f('ix_recovery_codes_user_id'), table_name='recovery_codes')
    op.drop_table('recovery_codes')
    op.drop_table('totp_credentials')
