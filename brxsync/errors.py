"""The one base for a service refusing a write (HackSoft's ApplicationError).

Services raise a subclass with the HTTP ``status`` and machine ``code`` the API answers; the
API's exception handler renders any uncaught one as the error envelope, so views need no
``except`` of their own, and the admin shows ``message``.
"""
from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
