"""temporary, doubling lockout; work deferred until after the response

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

Epoch = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', Epoch, nullable=True))
        batch_op.add_column(sa.Column('lockouts', sa.Integer(), nullable=False,
                                      server_default='0'))
    # A lock set before this revision was permanent: it now ends (a reset still unlocks).
    op.execute("UPDATE users SET locked_until = locked_at + 900, lockouts = 1 "
               "WHERE locked_at IS NOT NULL")

    op.create_table(
        'deferred_tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('payload', JSONType, nullable=False),
        sa.Column('created_at', Epoch, nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deferred_tasks')),
    )
    with op.batch_alter_table('deferred_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deferred_tasks_created_at'), ['created_at'],
                              unique=False)


def downgrade():
    op.drop_table('deferred_tasks')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('lockouts')
        batch_op.drop_column('locked_until')
