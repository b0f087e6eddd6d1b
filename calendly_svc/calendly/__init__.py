"""The Calendly client: the only code that talks to Calendly (API v2, OAuth, tokens, scopes,
rate limits, errors).

May import: store, and the top-level modules except app, __main__ and devenv.
"""
