"""Applying Calendly's state locally: invitee to appointment and client (`domain`), the outbox
payload, event types, time helpers, erasure and its tombstones.

May import: store, calendly, and the top-level modules except app, __main__ and devenv; never
http, ingest, worker or integrations.
"""
