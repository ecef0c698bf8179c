"""WSGI entry point (gunicorn brxsync.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.settings")
application = get_wsgi_application()
