"""The service's CardTrader API v2 client. Import from here, not from the modules.

``client_for_seller`` / ``client_for_token`` build clients from settings; every error is a
``CardTraderError`` subclass (see ``errors``); the limiter's own exceptions (``RateLimitWait``,
``CircuitOpen``, ``LimiterUnavailable``) pass through unchanged.
"""
from .client import CardTraderClient
from .errors import (
    AuthError,
    CardTraderError,
    ConnectionError,
    NotConnected,
    NotFound,
    RateLimited,
    ServerError,
    Timeout,
    UnexpectedResponse,
    ValidationError,
)
from .factory import client_for_seller, client_for_token, default_guard
from .payloads import ProductCreate, ProductUpdate, cents_to_price
from .types import (
    AppInfo,
    Blueprint,
    Category,
    Expansion,
    Game,
    Job,
    JobItem,
    Money,
    Order,
    OrderItem,
    Product,
    PropertyDef,
    WriteResult,
)

__all__ = [
    "AppInfo",
    "AuthError",
    "Blueprint",
    "CardTraderClient",
    "CardTraderError",
    "Category",
    "ConnectionError",
    "Expansion",
    "Game",
    "Job",
    "JobItem",
    "Money",
    "NotConnected",
    "NotFound",
    "Order",
    "OrderItem",
    "Product",
    "ProductCreate",
    "ProductUpdate",
    "PropertyDef",
    "RateLimited",
    "ServerError",
    "Timeout",
    "UnexpectedResponse",
    "ValidationError",
    "WriteResult",
    "cents_to_price",
    "client_for_seller",
    "client_for_token",
    "default_guard",
]
