"""replicas: the registries' versions and active pointers in the database

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registry_versions',
    sa.Column('registry_name', sa.String(length=60), nullable=False),
    sa.Column('version_id', sa.String(length=20), nullable=False),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('registry_name', 'version_id')
    )
    op.create_table('registry_state',
    sa.Column('registry_name', sa.String(length=60), nullable=False),
    sa.Column('active', sa.String(length=20), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('registry_name')
    )


def downgrade() -> None:
    op.drop_table('registry_state')
    op.drop_table('registry_versions')
