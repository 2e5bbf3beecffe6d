"""what the desk sorts customers by, kept on their rows; the base they are ranked against

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 23:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

COLUMNS = (("churn_risk", sa.Integer()), ("intent", sa.Integer()), ("expected_orders", sa.Float()),
           ("figures_at", sa.BigInteger()))


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for name, kind in COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))
            batch_op.create_index(batch_op.f(f'ix_customer_{name}'), [name], unique=False)
    op.create_table(
        'figure_base',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('computed_at', sa.BigInteger(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('figure_base')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        for name, _ in COLUMNS:
            batch_op.drop_index(batch_op.f(f'ix_customer_{name}'))
            batch_op.drop_column(name)
