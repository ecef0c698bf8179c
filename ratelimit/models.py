"""No tables of our own: limiter state lives in Redis. The proxy gives the admin a per-seller
status page (and its permissions) without another table."""
from __future__ import annotations

from inventory.models import SyncSettings


class SellerRateLimit(SyncSettings):
    class Meta:
        proxy = True
        verbose_name = "seller rate limit"
        verbose_name_plural = "rate limits and breakers"
