"""Postgres: the typed query wrappers (`queries`), their loader, the pool and migrations (`db`),
NOTIFY channels, what a text or JSON column can store (`storable`), and the short-lived cache of
webhook receivers read from it.

May import: nothing of calendly_svc (the bottom layer).
"""
