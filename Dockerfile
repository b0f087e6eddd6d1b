# syntax=docker/dockerfile:1
# Build stage: build the service's wheel (code, SQL and migrations) and install it, with its
# dependencies, into a virtualenv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sql ./sql
COPY migrations ./migrations
COPY calendly_svc ./calendly_svc
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /venv \
    && /venv/bin/pip install /wheels/*.whl

# Runtime stage: the virtualenv alone (the wheel is the service); no build tools, no root.
FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 PORT=8080 LOG_FORMAT=json
RUN useradd --system --uid 10001 --home-dir /app calendly
WORKDIR /app
COPY --from=build /venv /venv
USER calendly
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8080')}/healthz\", timeout=2)"]
# `serve` applies pending migrations (under yoyo's lock) before it listens; `migrate` alone is
# available for deployments that prefer a separate migration step (it needs only DATABASE_URL).
ENTRYPOINT ["python", "-m", "calendly_svc"]
CMD ["serve"]
