"""the instants of the time rules of reminders (unanswered, window_closing)

Customers stored before this revision get them from `wapulse rebuild`, or from their next event.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 01:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('awaiting_reply_since', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('question_since', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('next_reminder_at', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_customer_next_reminder_at'), ['next_reminder_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_next_reminder_at'))
        batch_op.drop_column('next_reminder_at')
        batch_op.drop_column('question_since')
        batch_op.drop_column('awaiting_reply_since')
