"""Persistence: sqlmodel tables, the async engine, alembic migrations and repository functions."""
