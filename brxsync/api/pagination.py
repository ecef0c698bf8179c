"""Cursor pagination for every list: ``{"next", "previous", "results"}``, ``?limit=`` per page.

Cursors, not offsets: a seller's operation list grows while they page through it, and an
offset would skip or repeat rows and cost O(offset) on 250k-item inventories. A cursor that
cannot be decoded is a 400 (the client sent garbage), not DRF's default 404.
"""
from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = ("-created_at", "-id")

    def decode_cursor(self, request: Any) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({self.cursor_query_param: ["Invalid cursor."]}, code="invalid_cursor")

    def get_page_size(self, request: Any) -> int:
        """``?limit=`` must be 1..max_page_size: a bad value is a 400, not silently ignored."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Must be an integer from 1 to {self.max_page_size}."]},
                code="invalid_limit",
            )
        return limit


    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["schema"].update({"minimum": 1, "maximum": self.max_page_size})
                param["description"] = f"Page size, 1..{self.max_page_size} (default {self.page_size})"
        return params
