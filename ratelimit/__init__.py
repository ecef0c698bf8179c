"""Rate limiting and circuit breakers for calls to CardTrader.

``get_default_guard()`` is what the CardTrader client factory meters requests with. The import
of the services is lazy so that loading this package (app registry, the client's factory) never
needs Redis or pulls Django models in early.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .services import RedisGuard

_default: RedisGuard | None = None
_lock = threading.Lock()


def get_default_guard() -> RedisGuard:
    """The process-wide ``RedisGuard`` (settings: REDIS_URL, RATE_LIMIT_*)."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                from .services import RedisGuard

                _default = RedisGuard.from_settings()
    return _default
