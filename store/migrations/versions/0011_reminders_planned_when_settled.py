"""reminders planned when the batches before them have committed: tier changes marked as planned,
customers marked with the inbox position that last wrote them; no counters left (default owners go
in turn by customer id), so no row is written by every batch

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 01:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

PLANNED_THROUGH = "reminders.planned_through"


def upgrade() -> None:
    with op.batch_alter_table('tier_change', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planned', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(f"UPDATE tier_change SET planned = true WHERE id <= COALESCE((SELECT value FROM counter "
               f"WHERE name = '{PLANNED_THROUGH}'), 0)")
    op.create_index('ix_tier_change_unplanned', 'tier_change', ['customer_id'], unique=False,
                    postgresql_where=sa.text('NOT planned'), sqlite_where=sa.text('NOT planned'))
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('written_through', sa.BigInteger(), nullable=True))
    op.drop_table('counter')


def downgrade() -> None:
    op.create_table(
        'counter',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    # the code of 0010 plans the tier changes after its cursor: those not planned yet
    op.execute(f"INSERT INTO counter (name, value) SELECT '{PLANNED_THROUGH}', COALESCE(MIN(id) - 1, "
               "(SELECT COALESCE(MAX(id), 0) FROM tier_change)) FROM tier_change WHERE NOT planned")
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('written_through')
    op.drop_index('ix_tier_change_unplanned', table_name='tier_change')
    with op.batch_alter_table('tier_change', schema=None) as batch_op:
        batch_op.drop_column('planned')
