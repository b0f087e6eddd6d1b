"""A user's Calendly integration: the OAuth connect flow (`connect`), webhook subscriptions of
the user and the organization (`subscriptions`), the integration lookup (`lookup`), syncs
(`sync`), key rotation (`rotation`) and the webhook subscription health check with its gap
syncs (`webhook_health`).

May import: store, calendly, apply, and the top-level modules except app, __main__ and devenv;
never http, ingest or worker.
"""
