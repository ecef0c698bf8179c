"""``manage.py create_api_key <name>``: print a new service API key, once."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from brxsync.api.models import ApiKey


class Command(BaseCommand):
    help = "Create a service API key and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Which service will use the key")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("name must be 1-100 characters")
        api_key, raw_key = ApiKey.generate(name)
        # The key alone on stdout so scripts can capture it; the rest on stderr.
        self.stderr.write(f"API key {api_key.prefix}… created for {name!r}. It is shown only now:")
        self.stdout.write(raw_key)
