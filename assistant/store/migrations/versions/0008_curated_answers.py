"""curated answers: approved answers served before the model, versioned

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'curated_answers',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('previous_id', sa.Integer(), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.String(length=128), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('withdrawn_by', sa.String(length=128), nullable=True),
        sa.Column('served', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['previous_id'], ['curated_answers.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_curated_answers_withdrawn_at', 'curated_answers', ['withdrawn_at'])


def downgrade() -> None:
    op.drop_index('ix_curated_answers_withdrawn_at', table_name='curated_answers')
    op.drop_table('curated_answers')
