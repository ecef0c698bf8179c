"""What observability costs per request: logging + metrics + tracing on vs off, same run.

Two ways to serve the requests, both against the real PostgreSQL (database ``brxsync_obsbench``,
or ``BENCH_DATABASE_URL``; created and migrated if absent), with production's pooled connections
(``DB_POOL=true``) and prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, as
``brxsync/gunicorn.conf.py`` sets it), so every counter update writes to its mmap file as in
production:

- ``--server inprocess`` (default): Django's test ``Client`` in this process. No network, so the
  figure is the server-side cost alone, the worst case for the ratio. ``--profile MODE`` writes a
  cProfile of the webhook requests of one mode instead (``--profile-out``).
- ``--server gunicorn``: one gunicorn per mode, each started as production starts it
  (``-c brxsync/gunicorn.conf.py``: gevent since the tenth session, gthread × 4 threads before), driven
  in turn by ``--conns`` closed-loop keep-alive clients from this process. Reported: requests/s, median latency, and the
  server's CPU per request (utime + stime of the gunicorn process group, which the other work on a
  shared machine does not move as much as it moves throughput).

Endpoints: ``webhook`` (``POST /api/v1/webhooks/cardtrader/<id>/``, a signed test-mode delivery with
a fresh id each time: verify, parse, store, answer — the path CardTrader hits) and ``health``
(``GET /health/live``, the framework floor).

Modes, alternated round by round so drift (other work on the machine) hits them alike. Under
gunicorn the rounds are short (40 × 0.5 s per mode by default): this VM's speed drifts by ±30 %
within minutes, and with 2–5 s rounds the same comparison read anywhere from +6 % to +25 % from
one run to the next; in 0.5 s slices four runs agreed within ±1 % (docs/BENCHMARKS.md, "Ninth
session"). Read the totals' ratio (the table), not the median of per-round ratios: a ratio of two
short, noisy rates is biased upward, and the per-round figures show the noise, not the cost.

- ``off``: no observability middleware, root logger at WARNING (no access line), tracing not
  installed, and the request-time metric receivers (DB pool sample, connection counter) disconnected.
- ``no_logs`` (``--modes``): production's settings and middleware (metrics) at WARNING: no access line.
- ``no_tracing``: ``on`` without OpenTelemetry (what logs + metrics cost alone).
- ``on``: production's stack: ``ObservabilityMiddleware`` (HTTP and webhook metrics, the JSON access
  line with request id), JSON logs at INFO through the configured formatter and redaction filter to
  a file (production: stderr to the container runtime), and OpenTelemetry (request, Redis and SQL
  spans) sampling ``--sample-ratio`` of traces (production's default 0.1), exported over OTLP/HTTP by
  the batch span processor to a local collector stub (a stdlib HTTP server answering 200).

Run:  .venv/bin/python bench/observability_overhead.py [--requests 400] [--rounds 4]
      .venv/bin/python bench/observability_overhead.py --server gunicorn [--seconds 0.5 --rounds 40]
"""
from __future__ import annotations

import argparse
import http.client
import http.server
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _proc import HostSteal, group_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brxsync.test_settings")
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brxsync_obsbench")
os.environ["LOG_FORMAT"] = "json"
os.environ["DB_POOL"] = "true"  # production's default (test_settings turns it off)
# Before prometheus_client is imported: the value class (mmap-backed or not) is chosen at import.
_METRICS_DIR = tempfile.mkdtemp(prefix="obsbench-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _METRICS_DIR
# Tasks the webhook enqueues land in a namespace of their own, deleted at the end.
_BROKER_NS = os.environ["BRX_TEST_BROKER_NAMESPACE"] = f"obsbench-{uuid.uuid4().hex[:8]}"

MODES = ("off", "no_tracing", "on")
ALL_MODES = ("off", "no_logs", "no_tracing", "on")  # --modes may add no_logs
ENDPOINTS = ("health", "webhook")
_OBS_MIDDLEWARE = "brxsync.observability.context.ObservabilityMiddleware"


class _Sink(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts everything."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Sink.received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _SinkProcess:
    """The collector stub in a process of its own (as a real collector is), so its CPU is not
    counted as the web process's."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--sink"], stdout=subprocess.PIPE, text=True)
        self.server_port = int(self.proc.stdout.readline())  # type: ignore[union-attr]

    def stop(self) -> int:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return int(out.strip() or 0)


def _serve_sink() -> None:
    import signal

    shutil.rmtree(_METRICS_DIR, ignore_errors=True)  # made at import, used by the web side only
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    signal.signal(signal.SIGTERM, lambda *_: (print(_Sink.received, flush=True), os._exit(0)))
    print(sink.server_port, flush=True)
    sink.serve_forever()


def _ensure_database() -> None:
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        if not pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            pg.execute(f'CREATE DATABASE "{name}"')


def _make_seller() -> tuple[object, str, str]:
    from inventory.models import ConnectionState, SyncSettings, User

    user = User.objects.create(username=f"obsbench-{uuid.uuid4().hex[:8]}")
    sync = SyncSettings(user=user)
    secret = uuid.uuid4().hex
    sync.set_credentials(token=f"tok-{uuid.uuid4().hex}", shared_secret=secret)
    sync.connection_state = ConnectionState.CONNECTED
    sync.save()
    return user, f"/api/v1/webhooks/cardtrader/{sync.webhook_id}/", secret


def _body_maker(secret: str) -> Callable[[], tuple[bytes, str]]:
    """Signed test-mode deliveries, each with a fresh id (never the duplicate shortcut)."""
    from syncops import webhook_signature

    counter = iter(range(10**9))
    lock = threading.Lock()

    def make() -> tuple[bytes, str]:
        with lock:
            n = next(counter)
        body = (b'{"id":"%s","time":%d,"cause":"order.update","object_class":"Order","object_id":%d,'
                b'"mode":"test","data":{"id":%d,"state":"paid","order_items":[]}}'
                % (uuid.uuid4().hex.encode(), int(time.time()), n, n))
        return body, webhook_signature.sign(body, secret)

    return make


def _cleanup(user: object) -> None:
    import redis
    from django.conf import settings

    from syncops.models import WebhookEvent

    WebhookEvent.objects.filter(seller=user).delete()
    user.delete()  # type: ignore[attr-defined]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(match=f"{_BROKER_NS}:*", count=1000))
    if keys:
        client.delete(*keys)
    shutil.rmtree(_METRICS_DIR, ignore_errors=True)


def _print_table(results: dict[tuple[str, str], dict[str, float]], columns: list[tuple[str, str, str]],
                 modes: tuple[str, ...] = MODES) -> None:
    """One row per endpoint and mode; each column's overhead is against that endpoint's ``off``."""
    head = "| endpoint | mode | " + " | ".join(title for title, _, _ in columns) + " |"
    print(head)
    print("|---|---|" + "---:|" * len(columns))
    for endpoint in ENDPOINTS:
        base = results[(endpoint, "off")]
        for mode in modes:
            row = results[(endpoint, mode)]
            cells = []
            for _, key, fmt in columns:
                cell = format(row[key], fmt)
                if mode != "off" and key in base and key != "n":
                    # req/s: how much slower; ms: how much longer.
                    ratio = base[key] / row[key] - 1 if key == "rps" else row[key] / base[key] - 1
                    cell += f" ({ratio * 100:+.1f} %)"
                cells.append(cell)
            print(f"| {endpoint} | {mode} | " + " | ".join(cells) + " |")


# --- in-process ---------------------------------------------------------------------------------


def in_process(args: argparse.Namespace) -> None:
    sink = _SinkProcess()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink.server_port}"
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://127.0.0.1:{sink.server_port}/v1/traces"
    _ensure_database()

    import django

    django.setup()  # configures tracing too (the endpoint is set): disabled below for "off"
    from django.conf import settings
    from django.core.management import call_command
    from django.core.signals import request_started
    from django.db.backends.signals import connection_created
    from django.test import Client
    from django.test.utils import override_settings

    from brxsync import metrics, tracing
    from brxsync.observability.logs import make_formatter

    call_command("migrate", verbosity=0)
    user, webhook_url, secret = _make_seller()
    make_body = _body_maker(secret)

    log_file = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    root = logging.getLogger()
    file_handler = logging.StreamHandler(log_file)
    file_handler.setFormatter(make_formatter("json"))
    for f in root.handlers[0].filters:
        file_handler.addFilter(f)
    original_handlers = list(root.handlers)
    bare = [m for m in settings.MIDDLEWARE if m != _OBS_MIDDLEWARE]

    def metric_receivers(connected: bool) -> None:
        if connected:
            request_started.connect(metrics.sample_db_pools_on_request, weak=False,
                                    dispatch_uid="brx-db-sample-request")
            connection_created.connect(metrics.on_connection_created, weak=False, dispatch_uid="brx-db-opened")
        else:
            request_started.disconnect(dispatch_uid="brx-db-sample-request")
            connection_created.disconnect(dispatch_uid="brx-db-opened")

    cpu: dict[tuple[str, str], float] = {}

    def run(mode: str, endpoint: str, n: int) -> list[float]:
        if mode != "off":
            if mode == "on":
                tracing.configure()
            else:
                tracing.disable()
            metric_receivers(True)
            root.handlers = [file_handler]
            root.setLevel(logging.WARNING if mode == "no_logs" else logging.INFO)  # no_logs: no access line
            ctx = override_settings()
        else:
            tracing.disable()
            metric_receivers(False)
            root.handlers = original_handlers
            root.setLevel(logging.WARNING)
            ctx = override_settings(MIDDLEWARE=bare)
        timings = []
        cpu0 = time.process_time()  # this process, every thread (the span exporter's included)
        with ctx:
            client = Client()
            for _ in range(n):
                if endpoint == "webhook":
                    body, sig = make_body()
                    started = time.perf_counter()
                    r = client.post(webhook_url, data=body, content_type="application/json", HTTP_SIGNATURE=sig)
                else:
                    started = time.perf_counter()
                    r = client.get("/health/live")
                timings.append(time.perf_counter() - started)
                assert r.status_code == 200, r.content
        cpu[(endpoint, mode)] = cpu.get((endpoint, mode), 0.0) + time.process_time() - cpu0
        return timings

    modes = tuple(m for m in ALL_MODES if m in args.modes.split(","))
    results: dict[tuple[str, str], list[float]] = {}
    try:
        if args.profile:
            import cProfile

            run(args.profile, "webhook", 200)  # warm-up
            profiler = cProfile.Profile(time.thread_time)  # CPU, not wall time: a busy machine inflates less
            profiler.enable()
            t = run(args.profile, "webhook", args.requests)
            profiler.disable()
            profiler.dump_stats(args.profile_out)
            print(f"# {args.profile}: {len(t)} webhook requests, median {statistics.median(t) * 1000:.2f} ms "
                  f"(under the profiler); stats in {args.profile_out}")
            return
        for endpoint in ENDPOINTS:
            run("on", endpoint, 50)  # warm-up: imports, connections, instrumentation
            run("off", endpoint, 50)
            for mode in modes:
                cpu.pop((endpoint, mode), None)  # the warm-up's
            for round_no in range(args.rounds):
                k = round_no % len(modes)
                for mode in modes[k:] + modes[:k]:  # who goes first rotates
                    results.setdefault((endpoint, mode), []).extend(run(mode, endpoint, args.requests))
    finally:
        tracing.disable()
        metric_receivers(True)
        root.handlers = original_handlers
        log_file.close()
        lines = sum(1 for _ in open(log_file.name))
        os.unlink(log_file.name)
        _cleanup(user)
        batches = sink.stop()
    if not results:
        return

    _header(args)
    table = {}
    for key, t in results.items():
        table[key] = {"n": len(t), "rps": len(t) / sum(t), "median": statistics.median(t) * 1000,
                      "p95": statistics.quantiles(t, n=20)[18] * 1000, "cpu": cpu[key] / len(t) * 1000}
    _print_table(table, [("requests", "n", "d"), ("req/s", "rps", ",.0f"), ("median ms", "median", ".2f"),
                         ("p95 ms", "p95", ".2f"), ("CPU ms/request", "cpu", ".3f")], modes)
    print(f"# no_tracing + on: {lines} log lines written, {batches} OTLP export batches received by the stub")


# --- gunicorn -----------------------------------------------------------------------------------

_OFF_SETTINGS = '''\
"""observability_overhead's "off": no observability middleware, no tracing, no metric receivers."""
from brxsync.test_settings import *  # noqa: F403

MIDDLEWARE = [m for m in MIDDLEWARE if m != {obs!r}]  # noqa: F405
OTEL_EXPORTER_OTLP_ENDPOINT = ""
LOGGING_CONFIG = "obsbench_off_settings.configure_logging_only"


def configure_logging_only(logging_settings):
    from brxsync.observability import logs

    logs.configure(logging_settings)
'''



class _Server:
    def __init__(self, mode: str, workdir: Path, sink_port: int, args: argparse.Namespace, *,
                 max_requests: int = 0, name: str = "") -> None:
        self.mode = mode
        self.port = _free_port()
        name = name or mode
        metrics_dir = workdir / f"metrics-{name}"
        metrics_dir.mkdir()
        env = dict(os.environ, GUNICORN_BIND=f"127.0.0.1:{self.port}", WEB_CONCURRENCY=str(args.workers),
                   GUNICORN_THREADS="4", GUNICORN_MAX_REQUESTS=str(max_requests),
                   PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                   PYTHONPATH=f"{workdir}{os.pathsep}{ROOT}", PYTHONUNBUFFERED="1")
        for key in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            env.pop(key, None)
        if mode == "off":
            env.update(DJANGO_SETTINGS_MODULE="obsbench_off_settings", LOG_LEVEL="WARNING")
        else:  # no_logs: production's settings and middleware at WARNING, so no access line is written
            env.update(LOG_LEVEL="WARNING" if mode == "no_logs" else "INFO")
        if mode == "on":
            env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink_port}",
                       OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{sink_port}/v1/traces",
                       OTEL_TRACES_SAMPLE_RATIO=args.sample_ratio)
        self.log_path = workdir / f"{name}.log"
        self.log = open(self.log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "brxsync.wsgi:application",
             "-c", str(ROOT / "brxsync/gunicorn.conf.py")],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/health/live")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"gunicorn ({self.mode}) did not start; see {self.log_path}")

    def cpu(self) -> float:
        return group_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _closed_loop(port: int, endpoint: str, url: str, make_body: Callable[[], tuple[bytes, str]],
                 conns: int, seconds: float) -> tuple[int, float, list[float]]:
    """``conns`` keep-alive clients, each sending its next request when the last is answered."""
    stop = time.perf_counter() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[int] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.perf_counter() < stop:
            if endpoint == "webhook":
                body, sig = make_body()
                headers = {"Content-Type": "application/json", "Signature": sig}
                method, path = "POST", url
            else:
                body, headers, method, path = None, {}, "GET", "/health/live"
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append(time.perf_counter() - started)
            if resp.status != 200:
                errors.append(resp.status)
        conn.close()
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} non-200 answers, e.g. {errors[:5]}")
    return len(latencies), time.perf_counter() - began, latencies


def prepare_gunicorn_bench(prefix: str) -> tuple[object, str, Callable[[], tuple[bytes, str]], Path]:
    """The bench database migrated, a seller, its signed-delivery maker and a work directory holding
    the "off" settings module: (user, webhook url, make_body, workdir). Clean up with ``_cleanup``."""
    _ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    user, webhook_url, secret = _make_seller()
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    (workdir / "obsbench_off_settings.py").write_text(_OFF_SETTINGS.format(obs=_OBS_MIDDLEWARE))
    return user, webhook_url, _body_maker(secret), workdir


def under_gunicorn(args: argparse.Namespace) -> None:
    sink = _SinkProcess()
    user, webhook_url, make_body, workdir = prepare_gunicorn_bench("obsbench-gunicorn-")
    modes = tuple(m for m in ALL_MODES if m in args.modes.split(","))
    if modes[0] != "off":
        raise SystemExit("--modes must include off: every overhead is against it")
    servers = {mode: _Server(mode, workdir, sink.server_port, args) for mode in modes}
    totals: dict[tuple[str, str], dict[str, float]] = {}
    lat: dict[tuple[str, str], list[float]] = {}
    per_round: dict[tuple[str, str], list[tuple[float, float]]] = {}  # (req/s, CPU s per request)
    try:
        for server in servers.values():
            server.wait_ready()
        for endpoint in ENDPOINTS:
            for server in servers.values():  # warm every worker's code paths and connections
                _closed_loop(server.port, endpoint, webhook_url, make_body, args.conns, 1.0)
            for round_no in range(args.rounds):
                k = round_no % len(modes)
                order = modes[k:] + modes[:k]  # who goes first rotates
                for mode in order:
                    server = servers[mode]
                    cpu0 = server.cpu()
                    n, elapsed, latencies = _closed_loop(server.port, endpoint, webhook_url, make_body,
                                                         args.conns, args.seconds)
                    cpu = server.cpu() - cpu0
                    acc = totals.setdefault((endpoint, mode), {"n": 0, "elapsed": 0.0, "cpu": 0.0})
                    acc["n"] += n
                    acc["elapsed"] += elapsed
                    acc["cpu"] += cpu
                    lat.setdefault((endpoint, mode), []).extend(latencies)
                    per_round.setdefault((endpoint, mode), []).append((n / elapsed, cpu / max(n, 1)))
    finally:
        for server in servers.values():
            server.stop()
        lines = {mode: sum(1 for line in open(s.log_path, "rb") if line.startswith(b'{"timestamp"'))
                 for mode, s in servers.items()}
        shutil.rmtree(workdir, ignore_errors=True)
        _cleanup(user)
        batches = sink.stop()

    _header(args)
    table = {key: {"n": acc["n"], "rps": acc["n"] / acc["elapsed"], "median": statistics.median(lat[key]) * 1000,
                   "cpu": acc["cpu"] / acc["n"] * 1000}
             for key, acc in totals.items()}
    _print_table(table, [("requests", "n", ",d"), ("req/s", "rps", ",.0f"), ("median ms", "median", ".2f"),
                         ("server CPU ms/request", "cpu", ".2f")], modes)
    print(f"# JSON log lines written: {lines}; {batches} OTLP export batches received by the stub")
    def listed(values: list[float]) -> str:
        rounds = ", ".join(f"{x * 100:+.1f} %" for x in values)
        return f"{rounds} (median {statistics.median(values) * 100:+.1f} %)"

    # Each round's modes ran back to back, so a round's ratio is the least disturbed comparison a
    # shared machine allows; their spread is this run's noise.
    for endpoint in ENDPOINTS:
        for mode in modes[1:]:
            pairs = list(zip(per_round[(endpoint, "off")], per_round[(endpoint, mode)], strict=True))
            slower = [off[0] / on[0] - 1 for off, on in pairs]
            costlier = [on[1] / off[1] - 1 for off, on in pairs]
            print(f"# {endpoint} {mode} vs off, per round: throughput {listed(slower)}; server CPU {listed(costlier)}")


_STEAL = HostSteal()  # from the bench's start to its header, printed at the end


def _header(args: argparse.Namespace) -> None:
    argv = " ".join(sys.argv[1:])
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.platform()} python {platform.python_version()} "
          f"cores={os.cpu_count()}")
    print(f"# command: .venv/bin/python bench/observability_overhead.py {argv}   "
          f"(sample ratio {args.sample_ratio}; load average at the end {os.getloadavg()[0]:.1f})")
    print(f"# {_STEAL.line()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=("inprocess", "gunicorn"), default="inprocess")
    parser.add_argument("--requests", type=int, default=400, help="in-process: per mode per round")
    parser.add_argument("--seconds", type=float, default=0.5, help="gunicorn: per mode per round")
    parser.add_argument("--rounds", type=int, help="default: 4 in-process, 40 under gunicorn (short rounds: see above)")
    parser.add_argument("--conns", type=int, default=4, help="gunicorn: concurrent keep-alive clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn: worker processes per server")
    parser.add_argument("--sample-ratio", default="0.1",
                        help="OTEL_TRACES_SAMPLE_RATIO for 'on' (production default 0.1; 1.0 traces every request)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="which of off,no_logs,no_tracing,on to run (no_logs: metrics and middleware, no "
                             "access line, no tracing)")
    parser.add_argument("--profile", choices=ALL_MODES, help="in-process: cProfile the webhook requests of one mode")
    parser.add_argument("--profile-out", default="obsbench.prof")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)  # the collector stub's process
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 40 if args.server == "gunicorn" else 4
    if args.sink:
        _serve_sink()
        return
    os.environ["OTEL_TRACES_SAMPLE_RATIO"] = args.sample_ratio
    if args.server == "gunicorn":
        under_gunicorn(args)
    else:
        in_process(args)


if __name__ == "__main__":
    main()
