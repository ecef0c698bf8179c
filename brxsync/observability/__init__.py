"""Logs, log context and redaction for every process (web, worker, beat, manage.py).

``bootstrap.configure`` is Django's ``LOGGING_CONFIG``: Django calls it once per process inside
``django.setup()``, before any app or middleware loads, which makes it the one hook every
process passes through. It configures logging and structlog, connects the Celery signals that
carry the log context into tasks, the DB-connection sampling, and (when configured) tracing.
"""
