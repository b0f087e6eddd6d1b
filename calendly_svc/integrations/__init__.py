"""A user's Calendly integration: the OAuth connect flow (`connect`), webhook subscriptions of
the user and the organization (`subscriptions`), the integration lookup (`lookup`), syncs
(`sync`) and key rotation (`rotation`).

May import: store, calendly, apply, and the top-level modules except app, __main__ and devenv;
never http, ingest or worker.
"""
