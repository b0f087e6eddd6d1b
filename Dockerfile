# syntax=docker/dockerfile:1
# Build stage: resolve and install the runtime dependencies into a virtualenv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /venv
COPY pyproject.toml README.md ./
COPY calendly_svc ./calendly_svc
RUN /venv/bin/pip install . && /venv/bin/pip uninstall -y calendly-svc

# Runtime stage: the virtualenv, the code, the SQL and the migrations; no build tools, no root.
FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 PORT=8080 LOG_FORMAT=json
RUN useradd --system --uid 10001 --home-dir /app calendly
WORKDIR /app
COPY --from=build /venv /venv
COPY calendly_svc ./calendly_svc
COPY sql ./sql
COPY migrations ./migrations
USER calendly
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8080')}/healthz\", timeout=2)"]
# `serve` applies pending migrations (under yoyo's lock) before it listens; `migrate` alone is
# available for deployments that prefer a separate migration step.
ENTRYPOINT ["python", "-m", "calendly_svc"]
CMD ["serve"]
