"""names searched as people type them: without accents, in any case (scoring.signals.normalise,
the fold the keyword signals use), kept beside the name

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 01:45:00
"""
import re
import unicodedata

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def _fold(name: str) -> str:
    """scoring.signals.normalise as of this migration (a migration never changes)."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
    return re.sub(r"\s+", " ", stripped.casefold()).strip()[:255]


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
    connection = op.get_bind()
    customer = sa.table('customer', sa.column('id', sa.BigInteger()), sa.column('name', sa.String()),
                        sa.column('search_name', sa.String()))
    rows = connection.execute(sa.select(customer.c.id, customer.c.name).where(customer.c.name.is_not(None))).all()
    if rows:
        connection.execute(customer.update().where(customer.c.id == sa.bindparam('customer_id'))
                           .values(search_name=sa.bindparam('folded')),
                           [{'customer_id': row.id, 'folded': _fold(row.name)} for row in rows])


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('search_name')
