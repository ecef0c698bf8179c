"""Inbound throttles: per caller, counted in the Redis cache shared by every web process.

DRF's ``SimpleRateThrottle`` keeps a sliding window of timestamps per key in the default
cache (django-redis), so the limit holds across gunicorn workers and hosts. Sellers and
services get separate scopes (a service acts for many sellers, so its budget is larger).
Rates are read from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` on each request rather than
once at import, so an operator's settings change (and a test's override) takes effect.

If Redis cannot be reached the throttle lets the request through (and logs): this is inbound
protection, and refusing every seller because the counter store is down would turn a cache
outage into a full API outage (Stripe's "fail open" for inbound limiters). The outbound
CardTrader budget (``ratelimit/``) makes the opposite choice, for the opposite reason.
"""
from __future__ import annotations

import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from brxsync.api.authentication import caller_id, is_service

logger = logging.getLogger(__name__)


class _CallerThrottle(SimpleRateThrottle):
    cache_format = "api-throttle:%(scope)s:%(ident)s"

    def __init__(self) -> None:  # DRF resolves the rate in __init__; do it per request instead
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # Redis down or timing out: fail open, loudly
            logger.warning("inbound throttle unavailable; letting the request through", exc_info=True)
            return True

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def applies_to(self, user: Any) -> bool:
        raise NotImplementedError

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if not (user and user.is_authenticated) or not self.applies_to(user):
            return None
        return self.cache_format % {"scope": self.scope, "ident": caller_id(user)}


class SellerRateThrottle(_CallerThrottle):
    scope = "seller"

    def applies_to(self, user: Any) -> bool:
        return not is_service(user)


class ServiceRateThrottle(_CallerThrottle):
    scope = "service"

    def applies_to(self, user: Any) -> bool:
        return is_service(user)
