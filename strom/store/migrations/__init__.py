"""Alembic migration environment for Strom's store (see :mod:`strom.store.schema`)."""
