"""Alembic environment for the run store (online only, configured in code).

:func:`playground.store.migrate.upgrade` opens the transaction (``BEGIN IMMEDIATE`` on SQLite,
an advisory lock on PostgreSQL) and passes its connection in ``config.attributes``; Alembic
runs every revision inside that one transaction. Run by the ``alembic`` command instead
(``alembic -c playground/store/alembic.ini ...``), it upgrades the database the settings name
(``PLAYGROUND_DB_URL`` or the SQLite file in ``PLAYGROUND_RUN_DIR``) through the same lock.
"""

from __future__ import annotations

from alembic import context

from playground.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode():
    raise SystemExit("the run store's migrations run online only (they inspect the database)")

if connection is None:
    from playground.store import default_url
    from playground.store.migrate import locked_transaction

    with locked_transaction(default_url()) as conn:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():  # a no-op: the caller's transaction is already open
        context.run_migrations()
