# dbpilot's image for docker-compose.yml (no Docker engine runs in CI; tests check the compose file).
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY controlplane controlplane
COPY tenants tenants
COPY clusters clusters
COPY workers workers
COPY manage.py ./
RUN pip install --no-cache-dir . && useradd --system dbpilot && mkdir -p /var/lib/dbpilot && chown dbpilot /var/lib/dbpilot
USER dbpilot
ENV DJANGO_SETTINGS_MODULE=controlplane.settings
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "controlplane.asgi:application"]
