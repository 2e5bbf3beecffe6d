"""the business number each outbound message went from (reports per number)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_number_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    # the statuses and echoes already stored carry the number: fill the rows from them
    op.execute(
        "UPDATE outbound_message SET phone_number_id = ("
        " SELECT min(event.phone_number_id) FROM event"
        " WHERE event.message_id = outbound_message.message_id AND event.phone_number_id IS NOT NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_column('phone_number_id')
