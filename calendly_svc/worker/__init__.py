"""The background worker: the generic lease engine (`engine`), the app's queues on it
(`queues`: inbox, outbox, sync jobs, the scheduler), inbox processing, outbox delivery,
retention and reschedule-wait checks.

May import: store, calendly, apply, ingest (signatures), integrations (sync jobs), and the
top-level modules except app, __main__ and devenv; never http.
"""
