"""conversation facts for the Insights numbers: first customer message's time and language, first answer's time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from retrieval.embeddings import mostly_chinese

    op.add_column('conversations', sa.Column('first_user_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('conversations', sa.Column('first_answer_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_conversations_created_at', 'conversations', ['created_at'])
    connection = op.get_bind()
    # one grouped pass over the messages, then updates by key (a correlated UPDATE lets SQLite pick the role index
    # and read every user message once per conversation)
    facts = connection.execute(sa.text(
        "SELECT conversation_id, MIN(CASE WHEN role = 'user' THEN created_at END), "
        "MIN(CASE WHEN role = 'assistant' THEN created_at END), MIN(CASE WHEN role = 'user' THEN id END) "
        "FROM messages GROUP BY conversation_id")).all()
    first_ids = [first_id for *_, first_id in facts if first_id is not None]
    texts = {}
    for start in range(0, len(first_ids), 5000):
        texts.update(connection.execute(sa.text("SELECT id, content FROM messages WHERE id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)), {"ids": first_ids[start:start + 5000]}).all())
    rows = [{"id": cid, "user_at": user_at, "answer_at": answer_at,
             "language": None if first_id is None else "zh" if mostly_chinese(texts.get(first_id) or "") else "en"}
            for cid, user_at, answer_at, first_id in facts]
    for start in range(0, len(rows), 5000):
        connection.execute(sa.text("UPDATE conversations SET first_user_at = :user_at, first_answer_at = :answer_at, "
                                   "language = :language WHERE id = :id"), rows[start:start + 5000])


def downgrade() -> None:
    op.drop_index('ix_conversations_created_at', table_name='conversations')
    op.drop_column('conversations', 'first_answer_at')
    op.drop_column('conversations', 'first_user_at')
