"""Alembic environment: Switchboard always runs migrations programmatically (see sync.store).

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]``; there is
no ``alembic.ini`` and no URL here, so the same migrations serve SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
