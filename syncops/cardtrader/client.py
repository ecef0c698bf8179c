"""The CardTrader API v2 client: one ``requests.Session`` per client, one seller (one token).

Every request goes through ``_exchange``, the seam where the rate limiter and the circuit breakers
plug in: ``guard.acquire`` before anything is sent, ``guard.record`` with the outcome after. If
``acquire`` raises (``RateLimitWait``, ``CircuitOpen``, ``LimiterUnavailable``) nothing is sent and
the exception reaches the caller unchanged, so a Celery task can re-schedule with a countdown.

The client never retries: a retried create adds stock twice (CardTrader merges identical products)
and a blind retry after a 429 only digs the hole deeper. It raises one of ``errors`` and the caller
decides.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from brxsync import metrics
from ratelimit.guard import Bucket, NullGuard, Outcome, Priority, RequestGuard

from . import errors, transport
from .payloads import ProductCreate, ProductUpdate, product_body
from .types import (
    AppInfo,
    Blueprint,
    Category,
    Expansion,
    Game,
    Job,
    Order,
    Product,
    WriteResult,
    unwrap_array,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Parse failures of a 2xx body: the shape is not what CardTrader documents.
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError)
# At most this much of an error body is read (error bodies are small; HTML pages can be large).
_MAX_ERROR_BODY = 64 * 1024


class CardTraderClient:
    """Talks to CardTrader for one seller.

    ``seller_id`` keys the limiter and breakers; ``guard`` is the limiter seam (``NullGuard``
    meters nothing). Timeouts are (connect, read) tuples: ``timeout`` for ordinary calls,
    ``export_timeout`` for ``/products/export``, which CardTrader says can take minutes.
    """

    def __init__(
        self,
        *,
        token: str,
        seller_id: str,
        base_url: str,
        guard: RequestGuard | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        export_timeout: tuple[float, float] = (5.0, 180.0),
        max_wait: float = 0.0,
        pool_maxsize: int = 4,
        user_agent: str = "brx-sync/1.0",
    ) -> None:
        if not token:
            raise errors.NotConnected("no CardTrader token")
        self.seller_id = str(seller_id)
        self.base_url = base_url.rstrip("/")
        self.guard: RequestGuard = guard if guard is not None else NullGuard()
        self.timeout = timeout
        self.export_timeout = export_timeout
        self.max_wait = max_wait
        self._session = requests.Session()
        # One host, so one pool; a few connections for a client shared by threads. No retries of
        # any kind at this layer (see the module docstring), and redirects are not followed.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_maxsize,
                              max_retries=Retry(total=0, connect=0, read=False, redirect=False, status=0,
                                                raise_on_status=False, raise_on_redirect=False))
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update({
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": user_agent,
        })
        self._session.trust_env = False  # no proxy / netrc credentials picked up from the environment

    def __repr__(self) -> str:  # never the token
        return f"<CardTraderClient seller={self.seller_id} base={self.base_url}>"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> CardTraderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the seam

    @contextmanager
    def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        timeout: tuple[float, float] | None = None,
        priority: Priority = Priority.NORMAL,
        max_wait: float | None = None,
        stream: bool = False,
    ) -> Iterator[requests.Response]:
        """Acquire from the guard, send, map failures to the taxonomy, record the outcome.

        Yields the 2xx response; whatever the caller does with the body inside the ``with``
        (parsing, streaming) is part of the exchange, so a bad body or a stream that dies halfway
        is recorded as the failure it is, exactly once.
        """
        bucket = Bucket.JOBS if path.startswith("/jobs/") else Bucket.GLOBAL
        self.guard.acquire(seller_id=self.seller_id, bucket=bucket, cost=1, priority=priority,
                           max_wait=self.max_wait if max_wait is None else max_wait)
        outcome = Outcome.OK
        response: requests.Response | None = None
        started = time.monotonic()
        try:
            try:
                response = self._session.request(
                    method, self.base_url + path, params=params, json=json_body,
                    timeout=timeout or self.timeout, stream=stream, allow_redirects=False,
                )
            except requests.RequestException as exc:
                raise transport.error_for_exception(method, path, exc) from None
            if not 200 <= response.status_code < 300:
                raise transport.error_for_response(method, path, response, self._error_body(response, method, path))
            try:
                yield response
            except errors.CardTraderError:
                raise
            except GeneratorExit:  # a stream consumer stopped early: the exchange itself was fine
                raise
            except _SHAPE_ERRORS as exc:
                raise errors.UnexpectedResponse(
                    f"unexpected response shape ({type(exc).__name__}: {str(exc)[:transport.MAX_MESSAGE]})",
                    status=response.status_code, method=method, path=path,
                    request_id=response.headers.get("X-Request-Id") or None,
                    outcome_unknown=method in transport.WRITE_METHODS,
                ) from None
        except errors.CardTraderError as exc:
            outcome = exc.outcome
            raise
        finally:
            if response is not None:
                response.close()
            self._record(outcome, bucket)
            elapsed = time.monotonic() - started
            metrics.observe_cardtrader_request(method=method, path=path, outcome=outcome.value, seconds=elapsed)
            logger.info(
                "cardtrader %s %s -> %s (%s) in %.0f ms", method, path,
                response.status_code if response is not None else "no response", outcome.value,
                elapsed * 1000,
                extra={"seller_id": self.seller_id, "cardtrader_outcome": outcome.value},
            )

    def _record(self, outcome: Outcome, bucket: Bucket) -> None:
        """Report to the guard, never letting its failure replace the request's result: a write
        that succeeded must not surface as "limiter unavailable", which means "nothing was sent"
        and would invite a retry (a second create adds the stock twice)."""
        try:
            self.guard.record(seller_id=self.seller_id, outcome=outcome, bucket=bucket)
        except Exception:
            logger.warning("cardtrader guard.record failed (outcome %s not recorded)", outcome.value,
                           exc_info=True, extra={"seller_id": self.seller_id})

    @staticmethod
    def _error_body(response: requests.Response, method: str, path: str) -> bytes:
        try:
            if response.raw is not None and not response._content_consumed:  # streamed: read a bounded prefix
                response.raw.decode_content = True
                return response.raw.read(_MAX_ERROR_BODY) or b""
            return response.content[:_MAX_ERROR_BODY]
        except Exception:  # the status already tells the story; the body only adds detail
            return b""

    def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        priority: Priority = Priority.NORMAL,
        max_wait: float | None = None,
    ) -> T:
        """One ordinary request: JSON in, ``parse(body)`` out, inside the seam."""
        with self._exchange(method, path, params=params, json_body=json_body,
                            priority=priority, max_wait=max_wait) as response:
            content = response.content
            if transport.looks_like_html(content, response.headers.get("Content-Type", "")):
                raise errors.UnexpectedResponse(
                    transport.summarise_body(content, response.headers.get("Content-Type", "")),
                    status=response.status_code, method=method, path=path,
                    outcome_unknown=method in transport.WRITE_METHODS,
                )
            try:
                body = transport.parse_json(content)
            except ValueError:
                raise errors.UnexpectedResponse(
                    transport.summarise_body(content), status=response.status_code, method=method, path=path,
                    outcome_unknown=method in transport.WRITE_METHODS,
                ) from None
            return parse(body)

    # ------------------------------------------------------------------ account and reference data

    def info(self, *, priority: Priority = Priority.NORMAL, max_wait: float | None = None) -> AppInfo:
        """``GET /info``: validates the token and names the app, its user and the webhook secret."""
        return self._call("GET", "/info", AppInfo.from_json, priority=priority, max_wait=max_wait)

    def games(self, *, max_wait: float | None = None) -> list[Game]:
        return self._call("GET", "/games", lambda b: [Game.from_json(g) for g in unwrap_array(b)], max_wait=max_wait)

    def categories(self, game_id: int | None = None, *, max_wait: float | None = None) -> list[Category]:
        params = {"game_id": game_id} if game_id is not None else None
        return self._call("GET", "/categories", lambda b: [Category.from_json(c) for c in unwrap_array(b)],
                          params=params, max_wait=max_wait)

    def expansions(self, *, max_wait: float | None = None) -> list[Expansion]:
        return self._call("GET", "/expansions", lambda b: [Expansion.from_json(e) for e in unwrap_array(b)],
                          max_wait=max_wait)

    def blueprints_export(self, expansion_id: int, *, max_wait: float | None = None) -> list[Blueprint]:
        return self._call("GET", "/blueprints/export", lambda b: [Blueprint.from_json(x) for x in unwrap_array(b)],
                          params={"expansion_id": expansion_id}, max_wait=max_wait)

    # ------------------------------------------------------------------ inventory

    def export_products(
        self,
        *,
        blueprint_id: int | None = None,
        expansion_id: int | None = None,
        priority: Priority = Priority.NORMAL,
        max_wait: float | None = None,
        convert: Callable[[dict[str, Any]], Any] = Product.from_json,
        parse: Callable[[Any, bytes], Iterator[Any]] | None = None,
    ) -> Iterator[Any]:
        """Stream ``GET /products/export`` one ``Product`` at a time (see ``export.py``); ``convert``
        builds something else from each raw row instead (the import's stage rows: no Product), and
        ``parse`` replaces the parsing altogether (the import's parser process: chunks).

        Nothing is sent until the first ``next()``. Stopping early is fine (the connection is
        closed). If the stream fails halfway the iterator raises: a caller must never treat a
        partial export as the whole inventory.
        """
        from .export import stream_products

        params = {k: v for k, v in (("blueprint_id", blueprint_id), ("expansion_id", expansion_id)) if v is not None}
        with self._exchange("GET", "/products/export", params=params or None, timeout=self.export_timeout,
                            priority=priority, max_wait=max_wait, stream=True) as response:
            yield from stream_products(response, method="GET", path="/products/export", convert=convert, parse=parse)

    def create_product(self, product: ProductCreate, *, strict: bool = False,
                       priority: Priority = Priority.NORMAL, max_wait: float | None = None) -> WriteResult:
        """``POST /products``. Not idempotent: CardTrader merges into an identical product by adding
        quantity, so a caller that gets ``outcome_unknown`` must reconcile, not retry."""
        body = product_body(dict(product), require=("blueprint_id", "price_cents", "quantity"), strict=strict)
        body.pop("id", None)
        return self._call("POST", "/products", WriteResult.from_json, json_body=body,
                          priority=priority, max_wait=max_wait)

    def update_product(self, product_id: int, changes: dict[str, Any], *, strict: bool = False,
                       priority: Priority = Priority.NORMAL, max_wait: float | None = None) -> WriteResult:
        """``PUT /products/:id`` with only the given fields; ``quantity`` is absolute."""
        body = product_body({**changes, "id": product_id}, strict=strict)
        return self._call("PUT", f"/products/{int(product_id)}", WriteResult.from_json, json_body=body,
                          priority=priority, max_wait=max_wait)

    def delete_product(self, product_id: int, *, priority: Priority = Priority.HIGH,
                       max_wait: float | None = None) -> WriteResult:
        """``DELETE /products/:id``. A gone product raises ``NotFound``; the push flow treats that as done."""
        return self._call("DELETE", f"/products/{int(product_id)}", WriteResult.from_json,
                          priority=priority, max_wait=max_wait)

    def increment_product(self, product_id: int, delta: int, *, priority: Priority = Priority.NORMAL,
                          max_wait: float | None = None) -> WriteResult:
        """``POST /products/:id/increment``: a relative change, so it composes with sales CardTrader
        made meanwhile. A result ≤ 0 deletes the product on CardTrader's side."""
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            raise ValueError("delta must be a non-zero int")
        return self._call("POST", f"/products/{int(product_id)}/increment", WriteResult.from_json,
                          json_body={"delta_quantity": delta}, priority=priority, max_wait=max_wait)

    def _bulk(self, kind: str, items: list[dict[str, Any]], priority: Priority, max_wait: float | None) -> str:
        if not items:
            raise ValueError("a bulk call needs at least one item")

        def parse(body: Any) -> str:
            job = body["job"] if isinstance(body, dict) else None
            if not isinstance(job, str) or not job:
                raise ValueError("no job uuid in the answer")
            return job

        return self._call("POST", f"/products/{kind}", parse, json_body={"products": items},
                          priority=priority, max_wait=max_wait)

    def bulk_create(self, products: Sequence[ProductCreate], *, strict: bool = False,
                    priority: Priority = Priority.NORMAL, max_wait: float | None = None) -> str:
        """``POST /products/bulk_create`` → the job uuid. Results come from ``get_job``."""
        items = [product_body(dict(p), require=("blueprint_id", "price_cents", "quantity"), strict=strict)
                 for p in products]
        return self._bulk("bulk_create", items, priority, max_wait)

    def bulk_update(self, products: Sequence[ProductUpdate], *, strict: bool = False,
                    priority: Priority = Priority.NORMAL, max_wait: float | None = None) -> str:
        items = [product_body(dict(p), require=("id",), strict=strict) for p in products]
        return self._bulk("bulk_update", items, priority, max_wait)

    def bulk_destroy(self, product_ids: Sequence[int], *, priority: Priority = Priority.HIGH,
                     max_wait: float | None = None) -> str:
        items = [{"id": int(pid)} for pid in product_ids]
        return self._bulk("bulk_destroy", items, priority, max_wait)

    def get_job(self, uuid: str, *, priority: Priority = Priority.NORMAL, max_wait: float | None = None) -> Job:
        """``GET /jobs/:uuid`` (its own 1 request/s bucket)."""
        if not uuid or "/" in uuid:
            raise ValueError("bad job uuid")
        return self._call("GET", f"/jobs/{uuid}", Job.from_json, priority=priority, max_wait=max_wait)

    # ------------------------------------------------------------------ orders

    def orders(
        self,
        page: int = 1,
        limit: int = 20,
        *,
        state: str | None = None,
        from_date: str | None = None,
        to_date: str | None = None,
        from_id: int | None = None,
        to_id: int | None = None,
        order_as: str | None = "seller",
        sort: str | None = None,
        max_wait: float | None = None,
    ) -> list[Order]:
        """``GET /orders``, one page. CardTrader silently replaces bad values by defaults, so they
        are refused here instead. No total is returned: page until a short page."""
        if not 1 <= limit <= 100 or page < 1:
            raise ValueError("page must be ≥ 1 and limit within 1..100")
        params: dict[str, Any] = {"page": page, "limit": limit}
        for key, value in (("state", state), ("from", from_date), ("to", to_date), ("from_id", from_id),
                           ("to_id", to_id), ("order_as", order_as), ("sort", sort)):
            if value is not None:
                params[key] = value
        return self._call("GET", "/orders", lambda b: [Order.from_json(o) for o in unwrap_array(b)],
                          params=params, max_wait=max_wait)

    def order(self, order_id: int, *, priority: Priority = Priority.NORMAL, max_wait: float | None = None) -> Order:
        return self._call("GET", f"/orders/{int(order_id)}", Order.from_json, priority=priority, max_wait=max_wait)
