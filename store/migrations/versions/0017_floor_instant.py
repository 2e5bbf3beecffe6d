"""the floor's instant as a column: read with every customer a batch folds, so an event at or
before it (past retention) is left out whichever way the customer is folded

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('customer', sa.Column('floor_through', sa.BigInteger(), nullable=True))
    customers = sa.table('customer', sa.column('id', sa.Integer()), sa.column('floor', sa.JSON()),
                         sa.column('floor_through', sa.BigInteger()))
    connection = op.get_bind()
    for customer_id, floor in connection.execute(sa.select(customers.c.id, customers.c.floor)
                                                 .where(customers.c.floor.is_not(None))).all():
        if floor:
            connection.execute(customers.update().where(customers.c.id == customer_id)
                               .values(floor_through=floor["through"]))


def downgrade() -> None:
    with op.batch_alter_table('customer') as batch:
        batch.drop_column('floor_through')
