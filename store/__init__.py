"""The store: tables, migrations, idempotent batch writes."""
