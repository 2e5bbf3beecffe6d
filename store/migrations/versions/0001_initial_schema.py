"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 14:33:18.770063
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('wa_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
    sa.Column('parent_user_id', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('phone_number_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('first_seen_at', sa.BigInteger(), nullable=True),
    sa.Column('last_inbound_at', sa.BigInteger(), nullable=True),
    sa.Column('last_outbound_at', sa.BigInteger(), nullable=True),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('unreachable', sa.Boolean(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_last_inbound_at'), ['last_inbound_at'], unique=False)

    op.create_table('raw_body',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('received_at', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('valid_json', sa.Boolean(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id')
    )
    with op.batch_alter_table('raw_body', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_raw_body_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_raw_body_sha256'), ['sha256'], unique=False)

    op.create_table('customer_alias',
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('kind', 'value')
    )
    with op.batch_alter_table('customer_alias', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_alias_customer_id'), ['customer_id'], unique=False)

    op.create_table('event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('raw_body_id', sa.BigInteger(), nullable=True),
    sa.Column('phone_number_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_at'), ['at'], unique=False)
        batch_op.create_index('ix_event_customer_at', ['customer_id', 'at'], unique=False)

    op.create_table('outbound_message',
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.BigInteger(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Boolean(), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('campaign', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('message_id')
    )
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_message_customer_id'), ['customer_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_message_customer_id'))

    op.drop_table('outbound_message')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index('ix_event_customer_at')
        batch_op.drop_index(batch_op.f('ix_event_at'))

    op.drop_table('event')
    with op.batch_alter_table('customer_alias', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_alias_customer_id'))

    op.drop_table('customer_alias')
    with op.batch_alter_table('raw_body', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_raw_body_sha256'))
        batch_op.drop_index(batch_op.f('ix_raw_body_received_at'))

    op.drop_table('raw_body')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_last_inbound_at'))

    op.drop_table('customer')
