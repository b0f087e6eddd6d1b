"""The service's HTTP API: routes per resource, middleware, validation, pagination, request and
response models, the operation declarations and the OpenAPI generator, views, probes, and the
aiohttp handler of Calendly's webhook route (the edge's logic is in `ingest`).

May import: store, calendly, apply, ingest, integrations, and the top-level modules except app,
__main__ and devenv; never worker (the worker runs beside it). Nothing imports http except app.
"""
