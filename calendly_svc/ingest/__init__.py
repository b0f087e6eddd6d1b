"""The webhook edge: accept and verify a Calendly delivery, store it durably through the
group-commit writer, and wake the worker; plus the signature scheme both directions use.

May import: store, apply (time helpers), and the top-level modules except app, __main__ and
devenv; never http, worker, integrations or calendly.
"""
