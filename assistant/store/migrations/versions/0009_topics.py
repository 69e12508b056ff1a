"""topics of customer questions and each conversation's topic

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'topics',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('encoder', sa.String(length=64), nullable=False),
        sa.Column('centre', sa.LargeBinary(), nullable=False),
        sa.Column('min_similarity', sa.Float(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('examples', sa.JSON(), nullable=False),
        sa.Column('merged_into', sa.Integer(), nullable=True),
        sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['merged_into'], ['topics.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_topics_retired_at', 'topics', ['retired_at'])
    op.create_table(
        'conversation_topics',
        sa.Column('conversation_id', sa.String(length=32), nullable=False),
        sa.Column('topic_id', sa.Integer(), nullable=True),
        sa.Column('similarity', sa.Float(), nullable=True),
        sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['topic_id'], ['topics.id']),
        sa.PrimaryKeyConstraint('conversation_id'),
    )
    op.create_index('ix_conversation_topics_topic_id', 'conversation_topics', ['topic_id'])


def downgrade() -> None:
    op.drop_index('ix_conversation_topics_topic_id', table_name='conversation_topics')
    op.drop_table('conversation_topics')
    op.drop_index('ix_topics_retired_at', table_name='topics')
    op.drop_table('topics')
