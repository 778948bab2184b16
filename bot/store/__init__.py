"""Persistence: sqlmodel tables, the async engine, migrations and one store per aggregate."""
