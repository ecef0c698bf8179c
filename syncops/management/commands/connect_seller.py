"""``manage.py connect_seller <seller uuid>``: connect a seller's CardTrader account from a shell.

The token is read from the environment variable named by ``--token-env`` (default
``CARDTRADER_TOKEN``) or from standard input, never from the command line, where it would land in
shell history and the process list. Goes through the same connect service as the API.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from syncops.services.connection import connection_connect


class Command(BaseCommand):
    help = "Validate a CardTrader token with CardTrader and connect it to a seller (created if needed)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("seller", help="seller UUID (Ebartex JWT sub)")
        parser.add_argument("--token-env", default="CARDTRADER_TOKEN",
                            help="environment variable holding the token (else it is read from stdin)")

    def handle(self, *args: Any, **options: Any) -> None:
        token = os.environ.get(options["token_env"]) or sys.stdin.readline()
        token = token.strip()
        if not token:
            raise CommandError(f"no token: set {options['token_env']} or pipe it on stdin")
        try:
            result = connection_connect(seller_id=options["seller"], token=token)
        except Exception as exc:  # the service's errors carry CardTrader's reason, never the token
            raise CommandError(f"connect refused: {exc}") from None
        self.stdout.write(f"connected seller {result.seller_id} (CardTrader user {result.cardtrader_user_id})")
        self.stdout.write(f"webhook URL: {result.webhook_url}")
