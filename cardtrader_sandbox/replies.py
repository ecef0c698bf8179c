"""Response values shared by the CardTrader routes and the control API, and CardTrader's error
envelope (used for every error except rate limits, which have their own body)."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from .inventory import ItemError

HTML_ERROR = (
    "<!DOCTYPE html>\n<html>\n<head>\n  <title>We're sorry, but something went wrong (502)</title>\n</head>\n"
    "<body>\n  <div class=\"dialog\">\n    <h1>We're sorry, but something went wrong.</h1>\n"
    "    <p>The server is temporarily unable to service your request. Please try again later.</p>\n"
    "  </div>\n</body>\n</html>\n"
)


class Reply:
    """A response: JSON object, raw bytes, or a streamed iterable of byte chunks."""

    __slots__ = ("body", "content_type", "headers", "status", "stream")

    def __init__(self, status: int, body: Any = None, *, content_type: str = "application/json; charset=utf-8",
                 headers: dict[str, str] | None = None, stream: Iterable[bytes] | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.stream = stream


def envelope(status: int, code: str, errors: Any, message: str) -> Reply:
    return Reply(status, {"error_code": code, "errors": errors, "extra": {"message": message},
                          "request_id": str(uuid.uuid4())})


def item_error(err: ItemError) -> Reply:
    first = next(iter(err.errors.items()), ("", [""]))
    detail = first[1] if isinstance(first[1], list) else [json.dumps(first[1])]
    message = f"{first[0]} {detail[0] if detail else ''}".strip()
    if err.code == "not_found":
        message = "Not found"
    return envelope(err.status, err.code, err.errors, message)


