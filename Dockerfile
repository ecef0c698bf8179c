# Production image: slim, non-root, gunicorn, health-checked.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config \
        default-libmysqlclient-dev && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libmariadb3 curl \
        && rm -rf /var/lib/apt/lists/* \
        && useradd --system --uid 10001 --home /app brxsync
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=brxsync:brxsync . /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=brxsync.settings PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN SECRET_KEY=build-only FERNET_KEYS= python manage.py collectstatic --noinput -v 0
USER brxsync
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health/live || exit 1
# brxsync/gunicorn.conf.py: graceful stop on SIGTERM (in-flight requests finish), multiprocess
# metrics, JSON access lines from the app's own middleware.
CMD ["gunicorn", "-c", "brxsync/gunicorn.conf.py", "brxsync.wsgi"]
