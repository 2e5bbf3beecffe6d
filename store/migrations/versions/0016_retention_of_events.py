"""retention of events: a customer's floor (the fold of their deleted events), and the report's
day counts of deleted events named for both kinds of deletion

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('customer', sa.Column('floor', sa.JSON(), nullable=True))
    op.rename_table('erased_activity', 'retired_activity')


def downgrade() -> None:
    op.rename_table('retired_activity', 'erased_activity')
    with op.batch_alter_table('customer') as batch:
        batch.drop_column('floor')
