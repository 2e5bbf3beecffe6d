"""erasure: a log that keeps salted hashes only, and the day counts erased customers leave to the
report

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'erasure',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('identifier_hash', sa.String(length=64), nullable=False),
        sa.Column('erased_at', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_erasure_identifier_hash', 'erasure', ['identifier_hash'])
    op.create_table(
        'erased_activity',
        sa.Column('day', sa.BigInteger(), nullable=False),
        sa.Column('phone_number_id', sa.String(length=64), nullable=False),
        sa.Column('owner', sa.String(length=64), nullable=False),
        sa.Column('direction', sa.String(length=8), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('messages', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'phone_number_id', 'owner', 'direction', 'kind'),
    )


def downgrade() -> None:
    op.drop_table('erased_activity')
    op.drop_index('ix_erasure_identifier_hash', table_name='erasure')
    op.drop_table('erasure')
