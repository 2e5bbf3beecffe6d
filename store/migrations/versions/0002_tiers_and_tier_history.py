"""tiers and tier history

Customers stored before this revision get their tiers from `wapulse rebuild`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 18:51:10.086514
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tier_change',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('from_tier', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('to_tier', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('cause', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tier_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tier_change_at'), ['at'], unique=False)
        batch_op.create_index('ix_tier_change_customer_at', ['customer_id', 'at'], unique=False)

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('interactions', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('tier', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('tier_since', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('next_tier_at', sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f('ix_customer_next_tier_at'), ['next_tier_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_tier'), ['tier'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_tier'))
        batch_op.drop_index(batch_op.f('ix_customer_next_tier_at'))
        batch_op.drop_column('next_tier_at')
        batch_op.drop_column('tier_since')
        batch_op.drop_column('tier')
        batch_op.drop_column('interactions')

    with op.batch_alter_table('tier_change', schema=None) as batch_op:
        batch_op.drop_index('ix_tier_change_customer_at')
        batch_op.drop_index(batch_op.f('ix_tier_change_at'))

    op.drop_table('tier_change')
