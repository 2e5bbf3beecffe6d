"""the desk: reps' passwords and one-time sign-in links; follow-up states and actions on
reminders; a delivery wave for each time a snoozed reminder goes out again

Reminders owed before the desk existed stay open if they are at most a week old; older ones are
closed as expired, so that a rep's first look is not at months of history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 23:00:00
"""
import time

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

OPEN_FOR_S = 7 * 24 * 3600


def upgrade() -> None:
    op.create_table(
        'rep_account',
        sa.Column('rep', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('password_set_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('rep'),
    )
    op.create_table(
        'sign_in_link',
        sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('rep', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.Column('used_at', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('nonce'),
    )
    with op.batch_alter_table('sign_in_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_link_rep'), ['rep'], unique=False)
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='open'))
        batch_op.add_column(sa.Column('snoozed_until', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('close_reason', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.create_index('ix_reminder_rep_state', ['rep', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminder_snoozed_until'), ['snoozed_until'], unique=False)
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.alter_column('state', server_default=None)
    now = int(time.time())
    op.get_bind().execute(sa.text("UPDATE reminder SET state = 'closed', closed_at = :now, close_reason = 'expired'"
                                  " WHERE created_at < :cutoff"), {"now": now, "cutoff": now - OPEN_FOR_S})
    op.create_table(
        'reminder_action',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('reminder_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('rep', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('at', sa.BigInteger(), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['reminder_id', 'rep'], ['reminder.id', 'reminder.rep']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('reminder_action', schema=None) as batch_op:
        batch_op.create_index('ix_reminder_action_reminder', ['reminder_id', 'rep'], unique=False)
    with op.batch_alter_table('reminder_delivery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wave', sa.Integer(), nullable=False, server_default='0'))
        batch_op.drop_constraint('uq_reminder_delivery_channel', type_='unique')
        batch_op.create_unique_constraint('uq_reminder_delivery_channel', ['reminder_id', 'rep', 'channel', 'wave'])
    with op.batch_alter_table('reminder_delivery', schema=None) as batch_op:
        batch_op.alter_column('wave', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('reminder_delivery', schema=None) as batch_op:
        batch_op.drop_constraint('uq_reminder_delivery_channel', type_='unique')
        batch_op.create_unique_constraint('uq_reminder_delivery_channel', ['reminder_id', 'rep', 'channel'])
        batch_op.drop_column('wave')
    with op.batch_alter_table('reminder_action', schema=None) as batch_op:
        batch_op.drop_index('ix_reminder_action_reminder')
    op.drop_table('reminder_action')
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminder_snoozed_until'))
        batch_op.drop_index('ix_reminder_rep_state')
        for column in ('close_reason', 'closed_by', 'closed_at', 'snoozed_until', 'state'):
            batch_op.drop_column(column)
    with op.batch_alter_table('sign_in_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_link_rep'))
    op.drop_table('sign_in_link')
    op.drop_table('rep_account')
