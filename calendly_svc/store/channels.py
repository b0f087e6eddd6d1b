"""NOTIFY channels that wake the worker's queues."""

from __future__ import annotations

INBOX = "calendly_svc_inbox"
OUTBOX = "calendly_svc_outbox"
JOBS = "calendly_svc_jobs"
