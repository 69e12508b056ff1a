"""sentiment monitoring: feed items and alerts; index of messages waiting for a sentiment score

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 21:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feed_items',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('content_hash', sa.String(length=40), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=True),
    sa.Column('entity', sa.String(length=128), nullable=True),
    sa.Column('topic', sa.String(length=128), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('sentiment_label', sa.String(length=16), nullable=False),
    sa.Column('sentiment_score', sa.Float(), nullable=False),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('content_hash')
    )
    with op.batch_alter_table('feed_items', schema=None) as batch_op:
        batch_op.create_index('ix_feed_items_entity_published_at', ['entity', 'published_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_feed_items_published_at'), ['published_at'], unique=False)

    op.create_table('sentiment_alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('conversation_id', sa.String(length=32), nullable=True),
    sa.Column('entity', sa.String(length=128), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('sentiment_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sentiment_alerts_scope'), ['scope'], unique=False)
        batch_op.create_index(batch_op.f('ix_sentiment_alerts_created_at'), ['created_at'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_role_sentiment_label', ['role', 'sentiment_label'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_role_sentiment_label')
    op.drop_table('sentiment_alerts')
    op.drop_table('feed_items')
