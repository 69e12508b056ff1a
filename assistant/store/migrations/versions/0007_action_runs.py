"""action runs: the audit trail and approval queue of the actions the assistant takes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'action_runs',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('conversation_id', sa.String(length=32), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('arguments', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=24), nullable=False),
        sa.Column('confirmed_by', sa.String(length=128), nullable=True),
        sa.Column('approved_by', sa.String(length=128), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('http_status', sa.Integer(), nullable=True),
        sa.Column('latency_ms', sa.Float(), nullable=True),
        sa.Column('response_summary', sa.Text(), nullable=True),
        sa.Column('idempotency_key', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('idempotency_key'),
    )
    op.create_index('ix_action_runs_conversation_id', 'action_runs', ['conversation_id'])
    op.create_index('ix_action_runs_status_created_at', 'action_runs', ['status', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_action_runs_status_created_at', table_name='action_runs')
    op.drop_index('ix_action_runs_conversation_id', table_name='action_runs')
    op.drop_table('action_runs')
