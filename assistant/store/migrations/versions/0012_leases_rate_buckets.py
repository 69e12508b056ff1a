"""replicas: leases on shared work and their terms, shared rate-limit buckets

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('holder', sa.String(length=160), nullable=False),
    sa.Column('term', sa.Integer(), nullable=False),
    sa.Column('expires_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('lease_terms',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('term', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=160), nullable=False),
    sa.Column('started_s', sa.Float(), nullable=False),
    sa.Column('expires_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_lease_terms_name_term', 'lease_terms', ['name', 'term'], unique=True)
    op.create_table('rate_buckets',
    sa.Column('who', sa.String(length=200), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated_s', sa.Float(), nullable=False),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('who')
    )
    op.create_index(op.f('ix_rate_buckets_updated_s'), 'rate_buckets', ['updated_s'], unique=False)


def downgrade() -> None:
    op.drop_table('rate_buckets')
    op.drop_table('lease_terms')
    op.drop_table('leases')
