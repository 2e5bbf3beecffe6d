"""back-fill progress found by a partial index: the desk's board and `wapulse customers` ask for
it on every load, and there are a few such events among millions

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_event_backfill', 'event', ['phone_number_id'], postgresql_where=sa.text("kind = 'backfill'"),
                    sqlite_where=sa.text("kind = 'backfill'"))


def downgrade() -> None:
    op.drop_index('ix_event_backfill', table_name='event')
