"""deliveries held for a digest (quiet hours, a rep's daily digest)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reminder_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('reminder_delivery', schema=None) as batch_op:
        batch_op.drop_column('held')
