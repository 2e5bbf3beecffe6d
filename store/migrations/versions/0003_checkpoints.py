"""checkpoints: a customer's fold some hours back, and the outbound message of each status

A late event then refolds only the customer's recent events. Statuses and echoes stored before
this revision get their message id from their data; customers get a checkpoint at their next
late event (until then a late event refolds them whole, as before).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 22:10:00
"""
import json

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BACKFILL_CHUNK = 5_000


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkpoint', sa.JSON(), nullable=True))
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
    _backfill_message_ids()
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_message_id'), ['message_id'], unique=False)


def _backfill_message_ids() -> None:
    connection = op.get_bind()
    event = sa.table('event', sa.column('id', sa.BigInteger), sa.column('kind', sa.String),
                     sa.column('data', sa.JSON), sa.column('message_id', sa.String))
    last_id = 0
    while rows := connection.execute(
        sa.select(event.c.id, event.c.data)
        .where(event.c.kind.in_(['status', 'echo']), event.c.id > last_id)
        .order_by(event.c.id)
        .limit(BACKFILL_CHUNK)
    ).all():
        updates = [{'row_id': row.id, 'mid': mid} for row in rows if (mid := _data(row.data).get('mid'))]
        if updates:
            connection.execute(
                event.update().where(event.c.id == sa.bindparam('row_id')).values(message_id=sa.bindparam('mid')),
                updates,
            )
        last_id = rows[-1].id


def _data(value) -> dict:
    return json.loads(value) if isinstance(value, str) else (value or {})


def downgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_message_id'))
        batch_op.drop_column('message_id')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('checkpoint')
