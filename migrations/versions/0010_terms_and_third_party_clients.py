"""terms documents, versions, requirements and acceptances; Client.third_party (was
require_consent: one flag, the client is a third party, so consent is asked)

Revision ID: 0010
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0006'
branch_labels = None
depends_on = None

Epoch = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    # A plain RENAME COLUMN (SQLite >= 3.25, PostgreSQL): no batch rebuild of oauth_clients,
    # whose drop would cascade to grants and tokens.
    op.execute('ALTER TABLE oauth_clients RENAME COLUMN require_consent TO third_party')
    op.create_table(
        'terms_documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('created_at', Epoch, nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_terms_documents_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_terms_documents')),
        sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_terms_documents_tenant_id')),
    )
    op.create_index(op.f('ix_terms_documents_tenant_id'), 'terms_documents', ['tenant_id'])
    op.create_table(
        'terms_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.String(length=50), nullable=False),
        sa.Column('markdown_en', sa.Text(), nullable=True),
        sa.Column('markdown_fr', sa.Text(), nullable=True),
        sa.Column('html_en', sa.Text(), nullable=True),
        sa.Column('html_fr', sa.Text(), nullable=True),
        sa.Column('url_en', sa.String(length=2000), nullable=True),
        sa.Column('url_fr', sa.String(length=2000), nullable=True),
        sa.Column('published_at', Epoch, nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['terms_documents.id'],
                                name=op.f('fk_terms_versions_document_id_terms_documents'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_terms_versions')),
        sa.UniqueConstraint('document_id', 'version', name=op.f('uq_terms_versions_document_id')),
    )
    op.create_index(op.f('ix_terms_versions_document_id'), 'terms_versions', ['document_id'])
    op.create_table(
        'terms_requirements',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=True),
        sa.Column('client_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', Epoch, nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['oauth_clients.client_id'],
                                name=op.f('fk_terms_requirements_client_id_oauth_clients'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['document_id'], ['terms_documents.id'],
                                name=op.f('fk_terms_requirements_document_id_terms_documents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_terms_requirements_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_terms_requirements')),
        sa.UniqueConstraint('document_id', 'tenant_id', 'client_id',
                            name=op.f('uq_terms_requirements_document_id')),
    )
    op.create_index(op.f('ix_terms_requirements_document_id'), 'terms_requirements',
                    ['document_id'])
    op.create_index(op.f('ix_terms_requirements_tenant_id'), 'terms_requirements', ['tenant_id'])
    op.create_index(op.f('ix_terms_requirements_client_id'), 'terms_requirements', ['client_id'])
    op.create_table(
        'terms_acceptances',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=True),
        sa.Column('tenant_id', sa.Integer(), nullable=True),
        sa.Column('accepted_at', Epoch, nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['document_id'], ['terms_documents.id'],
                                name=op.f('fk_terms_acceptances_document_id_terms_documents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_terms_acceptances_user_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['version_id'], ['terms_versions.id'],
                                name=op.f('fk_terms_acceptances_version_id_terms_versions'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_terms_acceptances')),
        sa.UniqueConstraint('user_id', 'version_id', name=op.f('uq_terms_acceptances_user_id')),
    )
    op.create_index(op.f('ix_terms_acceptances_user_id'), 'terms_acceptances', ['user_id'])
    op.create_index(op.f('ix_terms_acceptances_document_id'), 'terms_acceptances',
                    ['document_id'])
    op.create_index(op.f('ix_terms_acceptances_version_id'), 'terms_acceptances',
                    ['version_id'])


def downgrade():
    op.drop_table('terms_acceptances')
    op.drop_table('terms_requirements')
    op.drop_table('terms_versions')
    op.drop_table('terms_documents')
    op.execute('ALTER TABLE oauth_clients RENAME COLUMN third_party TO require_consent')
