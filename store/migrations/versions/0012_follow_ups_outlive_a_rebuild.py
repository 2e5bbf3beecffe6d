"""follow-ups outlive a rebuild: the reminder's key to its customer may wait for the end of the
transaction, so `wapulse rebuild` can delete customers,
derive them again and point the reminders at them before it commits

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 01:30:00
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


SQLITE_NAME = "fk_reminder_customer_id_customer"  # SQLite's key has no name: batch mode gives it this one


def _set_deferrable(clause: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        conventions = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
        with op.batch_alter_table("reminder", naming_convention=conventions) as batch_op:
            batch_op.drop_constraint(SQLITE_NAME, type_="foreignkey")
            deferrable = clause.startswith("DEFERRABLE")
            batch_op.create_foreign_key(SQLITE_NAME, "customer", ["customer_id"], ["id"],
                                        deferrable=deferrable or None, initially="IMMEDIATE" if deferrable else None)
        return
    op.execute(f"""
        DO $$ DECLARE constraint_name text; BEGIN
            SELECT conname INTO constraint_name FROM pg_constraint
             WHERE conrelid = 'reminder'::regclass AND confrelid = 'customer'::regclass AND contype = 'f';
            EXECUTE format('ALTER TABLE reminder ALTER CONSTRAINT %I {clause}', constraint_name);
        END $$""")


def upgrade() -> None:
    _set_deferrable("DEFERRABLE INITIALLY IMMEDIATE")


def downgrade() -> None:
    _set_deferrable("NOT DEFERRABLE")
