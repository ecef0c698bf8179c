"""The HTTP server: CardTrader's API under /api/v2 and the control API under /_sandbox on one port.

Standard library only (ThreadingHTTPServer, HTTP/1.1 keep-alive). Each response goes out in one
write with TCP_NODELAY, which is what lets a thread-per-connection server pass 1,000 small
requests/s (two writes per response would meet Nagle + delayed ACK and stall ~40 ms each).
"""
from __future__ import annotations

import json
import random
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import imports, inventory, orders
from .catalogue import catalogue
from .control_api import ControlAPI
from .inventory import ItemError
from .ratelimit import GLOBAL_BODY, RateLimiter
from .replies import HTML_ERROR, Reply, envelope, item_error
from .state import Account, World
from .webhooks import WebhookDispatcher

EXPORT_CHUNK_ROWS = 4_000  # ~2 MB per chunked write: few syscalls, little memory
class Sandbox:
    """The application: world state, rate limiter, webhook dispatcher and the API routes."""

    def __init__(self) -> None:
        self.world = World()
        self.limiter = RateLimiter()
        self.webhooks = WebhookDispatcher(self.world)
        self.control = ControlAPI(self)
        self.rng = random.Random()
        R = re.compile
        self.routes: list[tuple[str, re.Pattern, Callable[..., Reply], str | None]] = [
            ("GET", R(r"/info"), self.info, None),
            ("GET", R(r"/games"), self.games, None),
            ("GET", R(r"/categories"), self.categories, None),
            ("GET", R(r"/expansions"), self.expansions, None),
            ("GET", R(r"/expansions/export"), self.expansions_export, None),
            ("GET", R(r"/blueprints/export"), self.blueprints_export, None),
            ("GET", R(r"/marketplace/products"), self.marketplace, "marketplace"),
            ("GET", R(r"/products/export"), self.products_export, None),
            ("POST", R(r"/products"), self.product_create, None),
            ("POST", R(r"/products/bulk_(create|update|destroy)"), self.bulk, None),
            ("PUT", R(r"/products/([^/]+)"), self.product_update, None),
            ("DELETE", R(r"/products/([^/]+)"), self.product_delete, None),
            ("POST", R(r"/products/([^/]+)/increment"), self.product_increment, None),
            ("GET", R(r"/jobs/([^/]+)"), self.job, "jobs"),
            ("POST", R(r"/product_imports"), self.import_start, None),
            ("GET", R(r"/product_imports/(\d+)"), self.import_get, None),
            ("GET", R(r"/product_imports/(\d+)/skipped"), self.import_skipped, None),
            ("GET", R(r"/orders"), self.orders_list, None),
            ("GET", R(r"/orders/([^/]+)"), self.order_get, None),
            ("PUT", R(r"/orders/([^/]+)/(ship|tracking_code|request-cancellation|confirm-cancellation)"),
             self.order_action, None),
        ]

    def reset(self) -> None:
        self.world.reset()
        self.limiter.reset()
        self.webhooks.reset()

    # --- the request pipeline ------------------------------------------------------------

    def handle_api(self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes) -> Reply:
        """Faults, then auth, then the rate limit, then the route — the order a real edge proxy
        and application would apply them in."""
        world = self.world
        auth = headers.get("Authorization", "")
        acct = world.by_token.get(auth[7:].strip()) if auth[:7].lower() == "bearer " else None
        uid = acct.user_id if acct else None
        fault = self._fault(uid, path)
        if fault is not None:
            return fault
        if acct is None:
            return envelope(401, "unauthorized", [], "You are not authorized to access this page")
        route = self._match(method, path)
        cfg = world.config
        rejected, wait = self.limiter.check(
            acct.token, route[3] if route else None, limit=int(cfg["global_limit"]),
            seconds=float(cfg["global_window_seconds"]), algorithm=cfg["rate_limit_algorithm"],
            count_rejected=bool(cfg["count_rejected"]))
        if rejected is not None:
            return Reply(429, rejected, headers=self._retry_after(wait))
        if route is None:
            return envelope(404, "not_found", [], "Not found")
        handler, args = route[2], route[4]
        parsed: Any = None
        if handler == self.import_start:  # multipart, not JSON
            parsed = (headers.get("Content-Type", ""), body)
        elif method in ("POST", "PUT", "PATCH") and body.strip():
            try:
                parsed = json.loads(body)
            except ValueError:
                return envelope(400, "bad_request", [], "The request body is not valid JSON")
        try:
            with world.lock:
                inventory.advance_jobs(world, acct)
                if acct.imports:
                    imports.advance(world, acct)
                return handler(acct, query, parsed, *args)
        except ItemError as err:
            return item_error(err)

    def _retry_after(self, wait: int) -> dict[str, str]:
        return {"Retry-After": str(wait)} if self.world.config["retry_after_header"] else {}

    def _fault(self, uid: int | None, path: str) -> Reply | None:
        world = self.world
        rng = self.rng
        timeout_rate = float(world.fault("timeout_rate", uid))
        if timeout_rate and rng.random() < timeout_rate:
            world.fault_release.wait(float(world.fault("timeout_seconds", uid)))
            return Reply(504, HTML_ERROR.replace("502", "504"), content_type="text/html; charset=utf-8")
        rate = float(world.fault("error_5xx_rate", uid))
        if rate and rng.random() < rate:
            status = int(world.fault("error_5xx_status", uid))
            return envelope(status, "internal_server_error", [], "Internal server error")
        rate = float(world.fault("html_error_rate", uid))
        if rate and rng.random() < rate:
            return Reply(502, HTML_ERROR, content_type="text/html; charset=utf-8")
        if world.bursts and world.take_burst(uid):
            return Reply(429, GLOBAL_BODY, headers=self._retry_after(10))
        return None

    def _match(self, method: str, path: str) -> tuple | None:
        for m, pattern, handler, scope in self.routes:
            if m == method:
                found = pattern.fullmatch(path)
                if found:
                    return (m, pattern, handler, scope, found.groups())
        return None

    # --- reference data -------------------------------------------------------------------

    def info(self, acct: Account, q: dict, body: Any) -> Reply:
        return Reply(200, {"id": acct.app_id, "name": acct.name, "shared_secret": acct.shared_secret,
                           "user_id": acct.user_id})

    def games(self, acct: Account, q: dict, body: Any) -> Reply:
        games = catalogue().games_body
        return Reply(200, games if self.world.config["games_shape"] == "array" else games["array"])

    def categories(self, acct: Account, q: dict, body: Any) -> Reply:
        cats = catalogue().categories
        if q.get("game_id", "").isdigit():
            cats = [c for c in cats if c["game_id"] == int(q["game_id"])]
        return Reply(200, cats)

    def expansions(self, acct: Account, q: dict, body: Any) -> Reply:
        return Reply(200, catalogue().expansions)

    def expansions_export(self, acct: Account, q: dict, body: Any) -> Reply:
        cat = catalogue()
        ids = {cat.blueprints[p.blueprint_id].expansion_id for p in acct.products.values()}
        return Reply(200, [e for e in cat.expansions if e["id"] in ids])

    def blueprints_export(self, acct: Account, q: dict, body: Any) -> Reply:
        cat = catalogue()
        raw = q.get("expansion_id", "")
        exp_id = int(raw) if raw.isdigit() else None
        if exp_id is None or exp_id not in cat.expansions_by_id:
            return envelope(404, "not_found", [], f"Data is not ready for blueprints_exp_{raw or 'nil'}")
        return Reply(200, cat.blueprints_by_expansion.get(exp_id, []))

    def marketplace(self, acct: Account, q: dict, body: Any) -> Reply:
        listings = catalogue().marketplace
        if q.get("blueprint_id"):
            return Reply(200, {q["blueprint_id"]: listings.get(q["blueprint_id"], [])})
        if q.get("expansion_id"):
            return Reply(200, {k: v for k, v in listings.items()
                               if v and str(v[0]["expansion"]["id"]) == q["expansion_id"]})
        return envelope(422, "missing_parameter", [], "Missing required parameter(s) expansion_id or blueprint_id")

    # --- inventory ------------------------------------------------------------------------

    def products_export(self, acct: Account, q: dict, body: Any) -> Reply:
        products = list(acct.products.values())
        if q.get("blueprint_id", "").isdigit():
            bp_id = int(q["blueprint_id"])
            products = [p for p in products if p.blueprint_id == bp_id]
        if q.get("expansion_id", "").isdigit():
            exp_id = int(q["expansion_id"])
            blueprints = catalogue().blueprints
            products = [p for p in products if blueprints[p.blueprint_id].expansion_id == exp_id]
        latency = float(self.world.fault("export_latency_per_1000", acct.user_id) or 0)
        if len(products) <= EXPORT_CHUNK_ROWS and not latency:
            render = inventory.export_row_json
            return Reply(200, ("[" + ",".join([render(acct, p) for p in products]) + "]").encode())
        return Reply(200, stream=self.export_chunks(acct, products, latency * len(products) / 1000.0))

    def export_chunks(self, acct: Account, products: list, delay: float) -> Iterable[bytes]:
        """Yield the JSON array in pieces, rendering rows as they go out (never one giant string;
        rows come from each product's render cache, see ``inventory.export_row_json``).
        The slow-export fault delays the first byte, as a slow server-side query would."""
        if delay > 0:
            self.world.fault_release.wait(delay)
        yield b"["
        render = inventory.export_row_json
        for start in range(0, len(products), EXPORT_CHUNK_ROWS):
            piece = ",".join([render(acct, p) for p in products[start:start + EXPORT_CHUNK_ROWS]])
            yield (("," if start else "") + piece).encode()
        yield b"]"

    def product_create(self, acct: Account, q: dict, body: Any) -> Reply:
        product, warnings = inventory.create(self.world, acct, body)
        return Reply(200, {"result": "ok", "warnings": warnings, "resource": inventory.resource(acct, product)})

    def product_update(self, acct: Account, q: dict, body: Any, product_id: str) -> Reply:
        product, warnings = inventory.update(acct, product_id, body if body is not None else {})
        return Reply(200, {"result": "ok", "warnings": warnings, "resource": inventory.resource(acct, product)})

    def product_delete(self, acct: Account, q: dict, body: Any, product_id: str) -> Reply:
        product = inventory.destroy(acct, product_id)
        return Reply(200, {"result": "ok", "warnings": [], "resource": inventory.resource(acct, product)})

    def product_increment(self, acct: Account, q: dict, body: Any, product_id: str) -> Reply:
        product, _deleted = inventory.increment(acct, product_id, body)
        return Reply(200, {"result": "ok", "warnings": {}, "resource": inventory.resource(acct, product)})

    def bulk(self, acct: Account, q: dict, body: Any, kind: str) -> Reply:
        items = body.get("products") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return envelope(422, "missing_parameter", {"products": ["can't be blank"]},
                            "Missing required parameter(s) products")
        limit = self.world.config["bulk_max_items"]
        if limit is not None and len(items) > int(limit):
            return envelope(422, "validation_error", {"products": [f"too many items (max {limit})"]},
                            f"products: too many items (max {limit})")
        job = inventory.new_job(self.world, acct, kind, items)
        return Reply(200, {"job": job.uuid})

    def job(self, acct: Account, q: dict, body: Any, job_uuid: str) -> Reply:
        job = acct.jobs.get(job_uuid)
        if job is None:
            return envelope(404, "not_found", [], "Not found")
        return Reply(200, inventory.job_body(job))

    # --- CSV import -----------------------------------------------------------------------

    def import_start(self, acct: Account, q: dict, body: tuple[str, bytes]) -> Reply:
        status, payload = imports.start(self.world, acct, *body)
        return Reply(status, payload)

    def _import(self, acct: Account, import_id: str) -> dict:
        record = acct.imports.get(int(import_id))
        if record is None:
            raise ItemError({"id": ["Import not found"]}, status=404, code="not_found")
        return record

    def import_get(self, acct: Account, q: dict, body: Any, import_id: str) -> Reply:
        return Reply(200, imports.body(self._import(acct, import_id)))

    def import_skipped(self, acct: Account, q: dict, body: Any, import_id: str) -> Reply:
        return Reply(200, imports.skipped_csv(self._import(acct, import_id)), content_type="text/csv; charset=utf-8")

    # --- orders ---------------------------------------------------------------------------

    def orders_list(self, acct: Account, q: dict, body: Any) -> Reply:
        return Reply(200, orders.list_orders(acct, q))

    def order_get(self, acct: Account, q: dict, body: Any, order_id: str) -> Reply:
        return Reply(200, orders.seller_view(acct, orders.get(acct, order_id)))

    def order_action(self, acct: Account, q: dict, body: Any, order_id: str, action: str) -> Reply:
        order = orders.get(acct, order_id)
        if action == "ship":
            orders.ship(order)
        elif action == "tracking_code":
            orders.set_tracking_code(order, body)
        elif action == "request-cancellation":
            orders.request_cancellation(acct, order, body)
        else:
            orders.confirm_cancellation(self.world, acct, order, body)
        return Reply(200, orders.seller_view(acct, order))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    disable_nagle_algorithm = True
    app: Sandbox  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # logging every request to stderr would cost more than serving it

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        started = time.time()
        body = self._read_body()
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        app = self.app
        try:
            if path.startswith("/_sandbox/"):
                self._send(app.control.handle(method, path[len("/_sandbox"):], query, body), method)
                return
            if path.startswith("/api/v2/"):
                reply = app.handle_api(method, path[len("/api/v2"):].rstrip("/") or "/", query, self.headers, body)
                acct = app.world.by_token.get(self.headers.get("Authorization", "")[7:].strip())
            else:
                reply = envelope(404, "not_found", [], "Not found")
                acct = None
        except Exception:  # a sandbox bug must still answer, and loudly
            traceback.print_exc()
            reply = envelope(500, "internal_server_error", [], "sandbox bug: see its stderr")
            acct = None
        app.world.request_log.append((acct.user_id if acct else None, method, path, parts.query, reply.status, started))
        self._send(reply, method)

    def _send(self, reply: Reply, method: str) -> None:
        try:
            reason = HTTPStatus(reply.status).phrase
        except ValueError:
            reason = ""
        head = [f"HTTP/1.1 {reply.status} {reason}", f"Content-Type: {reply.content_type}",
                "Server: nginx", f"Date: {self.date_time_string()}"]
        head.extend(f"{k}: {v}" for k, v in reply.headers.items())
        if self.close_connection:
            head.append("Connection: close")
        try:
            if reply.stream is not None:
                head.append("Transfer-Encoding: chunked")
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                for piece in reply.stream:
                    if piece:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
                return
            body = reply.body
            if isinstance(body, str):
                payload = body.encode("utf-8")
            elif isinstance(body, bytes):
                payload = body
            else:
                payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
            head.append(f"Content-Length: {len(payload)}")
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(host: str, port: int) -> tuple[Server, Sandbox]:
    app = Sandbox()
    handler = type("BoundHandler", (Handler,), {"app": app})
    return Server((host, port), handler), app


def serve(host: str, port: int, *, demo: bool = False) -> None:
    server, app = make_server(host, port)
    if demo:
        from .control_api import create_demo

        create_demo(app)
    actual = server.server_address[1]
    print(f"cardtrader_sandbox listening on http://{host}:{actual} (API base http://{host}:{actual}/api/v2)",
          flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()



