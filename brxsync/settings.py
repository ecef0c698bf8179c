"""Settings, read from the environment (12-factor) with django-environ.

Every name in DESIGN §8 is read here and documented in ``.env.example``. Defaults are the
embedded local run (SQLite files, local Redis); production sets the URLs explicitly.
"""
from __future__ import annotations

from pathlib import Path

import environ
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(env.str("ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)
VAR_DIR = Path(env.str("BRXSYNC_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-only-change-me" if DEBUG else environ.Env.NOTSET)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
SERVICE_NAME = "brxsync"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "inventory",
    "syncops",
    "ratelimit",
    "brxsync.api",
]

# HTTP metrics (route, method, status, latency) come from ObservabilityMiddleware, not
# django-prometheus's two middlewares: they updated 14 families per request (docs/BENCHMARKS.md).
MIDDLEWARE = [
    "brxsync.api.middleware.RequestIdMiddleware",
    "brxsync.observability.context.ObservabilityMiddleware",
    "brxsync.api.middleware.ErrorEnvelopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Staff messages (admin actions' "3 retried, 2 skipped") live in the session. Django's default,
# FallbackStorage, builds a signed-cookie storage for every request before anything asks for a
# message: ~27 µs of each web request, the webhook's included, against ~6 µs (docs/DECISIONS.md).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "brxsync.urls"
WSGI_APPLICATION = "brxsync.wsgi.application"
AUTH_USER_MODEL = "inventory.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -----------------------------------------------------------------------------
# The main database is PostgreSQL in production and tests (SQLite only for the embedded run).
# The catalogue (``blueprints``) is Ebartex's read-only MySQL/MariaDB; see brxsync/routers.py.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'brxsync.sqlite3'}"),
    "blueprints": env.db("BLUEPRINT_DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'catalogue.sqlite3'}"),
}
DB_POOL_MIN_SIZE = env.int("DB_POOL_MIN_SIZE", default=2)
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=20)
# The webhook inbox's insert (one statement per delivery) is a prepared statement; turn off behind
# a transaction-mode pooler that cannot keep them (docs/WEBHOOKS.md). Django's own queries never are.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    if env.bool("DB_POOL", default=True):
        # psycopg's pool through Django (5.1+): each process keeps at most DB_POOL_MAX_SIZE
        # connections and checks them before handing them out. CONN_MAX_AGE must stay 0.
        _pg_options["pool"] = {"min_size": DB_POOL_MIN_SIZE, "max_size": DB_POOL_MAX_SIZE, "timeout": 10}
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    _pg_options.setdefault("connect_timeout", 5)
if DATABASES["blueprints"]["ENGINE"] == "django.db.backends.mysql":
    # The seed's 5 s query timeout, and a short connect timeout so an outage fails fast.
    DATABASES["blueprints"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": 3,
            "read_timeout": 5,
            "write_timeout": 5,
            "charset": "utf8mb4",
            # Belt and braces beside the router: the session itself refuses writes.
            "init_command": "SET SESSION TRANSACTION READ ONLY",
        }
    )
    DATABASES["blueprints"]["CONN_MAX_AGE"] = 60
    DATABASES["blueprints"]["CONN_HEALTH_CHECKS"] = True
DATABASES["blueprints"].setdefault("TEST", {})["NAME"] = env.str(
    "BLUEPRINT_TEST_DATABASE_NAME", default="test_brxsync_catalogue"
)
for _db in DATABASES.values():
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        # The embedded run has web, worker and beat writing one file: wait for locks, use WAL.
        _db.setdefault("OPTIONS", {}).update(
            {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
        )
DATABASE_ROUTERS = ["brxsync.routers.CatalogueRouter"]

# --- Redis: cache, rate limiting, broker ----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="brx"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
        },
    }
}

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
if CELERY_BROKER_URL.split("://", 1)[0] in ("redis", "rediss"):
    # kombu's Redis transport with one client per channel instead of one per publish (brxsync/broker.py)
    CELERY_BROKER_TRANSPORT = "brxsync.broker:Transport"
CELERY_RESULT_BACKEND = None  # results live on SyncOperation rows, not in a result backend
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=1800)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=1500)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events cost ~30 % of each send and extra publishes per task; nothing here reads them
# (queue depths come from the broker). Turn on for Flower.
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("CELERY_TASK_EVENTS", default=False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes every database connection before and after every task unless
# this is set: a new PostgreSQL session per task (measured: 798 sessions for 800 webhook applies,
# ~4 ms of worker CPU each plus a backend start on the server). With it, the fix-up recycles
# connections only every this many tasks, and brxsync/celery.py applies Django's own per-request
# rule around each task instead (CONN_MAX_AGE, health checks, a connection left broken is dropped).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# The longest countdown any task uses (rate-limit waits, retry backoff). The broker's
# visibility timeout must exceed it or Redis redelivers delayed tasks as duplicates.
CELERY_MAX_COUNTDOWN_SECONDS = 3600
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_MAX_COUNTDOWN_SECONDS * 2,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (
    Queue("high-priority", Exchange("high-priority"), routing_key="high-priority"),
    Queue("bulk-sync", Exchange("bulk-sync"), routing_key="bulk-sync"),
    Queue("default", Exchange("default"), routing_key="default"),
)
# Prefetch per queue: a worker consuming several queues takes the smallest (brxsync/celery.py).
CELERY_QUEUE_PREFETCH = {"high-priority": 1, "bulk-sync": 1, "default": 4}
CELERY_TASK_ROUTES = {
    "syncops.tasks.webhook_prune": {"queue": "default"},  # housekeeping, not a delivery
    "syncops.tasks.webhook_*": {"queue": "high-priority"},
    "syncops.tasks.push_*": {"queue": "high-priority"},
    "syncops.tasks.import_*": {"queue": "bulk-sync"},
    "syncops.tasks.reconcile_*": {"queue": "bulk-sync"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- CardTrader -------------------------------------------------------------------------------
CARDTRADER_API_BASE = env.str("CARDTRADER_API_BASE", default="https://api.cardtrader.com/api/v2").rstrip("/")
CARDTRADER_CONNECT_TIMEOUT = env.float("CARDTRADER_CONNECT_TIMEOUT", default=5.0)
CARDTRADER_WRITE_TIMEOUT = env.float("CARDTRADER_WRITE_TIMEOUT", default=30.0)
CARDTRADER_EXPORT_TIMEOUT = env.float("CARDTRADER_EXPORT_TIMEOUT", default=180.0)
RATE_LIMIT_REQUESTS = env.int("RATE_LIMIT_REQUESTS", default=200)
RATE_LIMIT_WINDOW_SECONDS = env.float("RATE_LIMIT_WINDOW_SECONDS", default=10.0)
# A hair under CardTrader's 1 /jobs read per second: our bucket grants a read when the token is
# taken, CardTrader counts it when the request arrives, and two reads granted exactly 1.0 s apart
# arrive less than 1 s apart whenever the second spends less time in transit than the first
# (another process, a warmer connection) → 429. 0.9/s leaves ~110 ms for that jitter.
# N > 0 = a bucket of N tokens refilled at (limit - N) / window, so no sliding window ever sees
# more than the limit; 20 (18/s sustained) because CardTrader's window algorithm is unknown and a
# strict sliding window answers a full bucket with 429s. 0 = a full bucket of RATE_LIMIT_REQUESTS
# (200 at once, then 20/s), for a fixed window. docs/RATE_LIMITING.md "RATE_LIMIT_BURST".
RATE_LIMIT_BURST = env.int("RATE_LIMIT_BURST", default=20)
RATE_LIMIT_JOBS_PER_SECOND = env.float("RATE_LIMIT_JOBS_PER_SECOND", default=0.9)
RATE_LIMIT_RESERVED_SHARE = env.float("RATE_LIMIT_RESERVED_SHARE", default=0.2)
# Redis key namespace of the buckets and breakers (one per deployment sharing a Redis).
RATE_LIMIT_KEY_PREFIX = env.str("RATE_LIMIT_KEY_PREFIX", default="rl")
# Circuit breakers (seed numbers): failures that open one, how long it stays open, and the
# successes in HALF_OPEN that close it again.
BREAKER_FAILURE_THRESHOLD = env.int("BREAKER_FAILURE_THRESHOLD", default=5)
BREAKER_OPEN_SECONDS = env.float("BREAKER_OPEN_SECONDS", default=60.0)
BREAKER_SUCCESS_THRESHOLD = env.int("BREAKER_SUCCESS_THRESHOLD", default=2)
PUSH_BATCH_SIZE = env.int("PUSH_BATCH_SIZE", default=100)
PUSH_RETRY_BASE_SECONDS = env.float("PUSH_RETRY_BASE_SECONDS", default=1.0)
PUSH_RETRY_MAX_SECONDS = env.float("PUSH_RETRY_MAX_SECONDS", default=300.0)
PUSH_JOB_POLL_SECONDS = env.float("PUSH_JOB_POLL_SECONDS", default=30.0)
PUSH_JOB_POLL_INTERVAL = env.float("PUSH_JOB_POLL_INTERVAL", default=1.05)
PUSH_RUN_MAX_SECONDS = env.float("PUSH_RUN_MAX_SECONDS", default=120.0)
PUSH_SEND_MAX_WAIT = env.float("PUSH_SEND_MAX_WAIT", default=0.5)
PUSH_JOB_MIN_AGE_SECONDS = env.float("PUSH_JOB_MIN_AGE_SECONDS", default=0.5)
PUSH_MAX_JOBS_IN_FLIGHT = env.int("PUSH_MAX_JOBS_IN_FLIGHT", default=100)
PUSH_CLAIM_BATCHES = env.int("PUSH_CLAIM_BATCHES", default=5)
# Later changes of an item wait this long at most for its uncertain increment to be settled.
PUSH_UNCERTAIN_HOLD_SECONDS = env.float("PUSH_UNCERTAIN_HOLD_SECONDS", default=600.0)
# A newer edit of an item whose bulk call went unanswered (the job may exist, unrecorded) waits this
# long from that send: longer than CardTrader takes to run a job. docs/PUSH.md "Unanswered bulk calls".
PUSH_UNRECORDED_JOB_SECONDS = env.float("PUSH_UNRECORDED_JOB_SECONDS", default=60.0)
IMPORT_CHUNK_SIZE = env.int("IMPORT_CHUNK_SIZE", default=5000)
# Connections writing an import's chunks side by side (PostgreSQL; 1 = inline). docs/IMPORT.md.
IMPORT_WRITERS = env.int("IMPORT_WRITERS", default=2)
# Parse the export in a child process (PostgreSQL), so parsing and writing use two cores. docs/IMPORT.md.
IMPORT_PARSE_PROCESS = env.bool("IMPORT_PARSE_PROCESS", default=True)
SYNC_LEASE_SECONDS = env.float("SYNC_LEASE_SECONDS", default=120.0)
# Imports and reconciles pause before a chunk while this many recent webhook deliveries wait to be
# applied (0 = never), for at most BULK_YIELD_MAX_SECONDS per chunk (syncops/services/yielding.py).
BULK_YIELD_BACKLOG = env.int("BULK_YIELD_BACKLOG", default=20)
BULK_YIELD_MAX_SECONDS = env.float("BULK_YIELD_MAX_SECONDS", default=2.0)
# ... or while any delivery still waiting for its apply message was stored this long ago (0 = never):
# the worker is behind even when the backlog is short.
BULK_YIELD_LATE_MS = env.int("BULK_YIELD_LATE_MS", default=250)
RECONCILE_INTERVAL_SECONDS = env.int("RECONCILE_INTERVAL_SECONDS", default=6 * 3600)
RECONCILE_SPREAD_SECONDS = env.int("RECONCILE_SPREAD_SECONDS", default=3600)
RECONCILE_REPORT_ITEMS = env.int("RECONCILE_REPORT_ITEMS", default=1000)
CATALOGUE_MAPPING_CACHE_PREFIX = env.str("CATALOGUE_MAPPING_CACHE_PREFIX", default="bpmap")
CATALOGUE_MAPPING_TTL = env.int("CATALOGUE_MAPPING_TTL", default=24 * 3600)
CATALOGUE_MAPPING_MISS_TTL = env.int("CATALOGUE_MAPPING_MISS_TTL", default=300)
CATALOGUE_MAPPING_L1_TTL = env.int("CATALOGUE_MAPPING_L1_TTL", default=60)
CATALOGUE_MAPPING_L1_SIZE = env.int("CATALOGUE_MAPPING_L1_SIZE", default=50_000)
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
WEBHOOK_FRESHNESS_SECONDS = env.int("WEBHOOK_FRESHNESS_SECONDS", default=24 * 3600)
WEBHOOK_SWEEP_AFTER_SECONDS = env.int("WEBHOOK_SWEEP_AFTER_SECONDS", default=15)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=10)
# Other waiting orders of the seller an apply takes along (0: off, the default; see orders.py and
# docs/WEBHOOKS.md "Taking the backlog along" for why).
WEBHOOK_DRAIN_ORDERS = env.int("WEBHOOK_DRAIN_ORDERS", default=0)
# How long the web process's hand-off waits for more deliveries to share one apply message
# (syncops/services/webhooks.py, _HandOff; docs/WEBHOOKS.md "Hand-off batching").
WEBHOOK_HANDOFF_LINGER_MS = env.int("WEBHOOK_HANDOFF_LINGER_MS", default=100)
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BODY_BYTES

# --- Secrets at rest -------------------------------------------------------------------------
# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation: prepend a new key,
# run `manage.py rotate_fernet_keys`, then drop the old one).
FERNET_KEYS = env.list("FERNET_KEYS", default=[])

# --- Auth for the REST API -----------------------------------------------------------------
JWT_PUBLIC_KEY = env.str("JWT_PUBLIC_KEY", default="").replace("\\n", "\n")
JWT_ISSUER = env.str("JWT_ISSUER", default="https://api.ebartex.com")
JWT_AUDIENCE = env.str("JWT_AUDIENCE", default="brx-sync")
JWT_REQUIRE_MFA = env.bool("JWT_REQUIRE_MFA", default=True)
JWT_LEEWAY_SECONDS = env.int("JWT_LEEWAY_SECONDS", default=30)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # brxsync/api (docs/API.md): seller JWT or service API key; per-caller throttles on Redis.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "brxsync.api.authentication.JWTAuthentication",
        "brxsync.api.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["brxsync.api.permissions.IsSellerOrService"],
    "DEFAULT_THROTTLE_CLASSES": [
        "brxsync.api.throttling.SellerRateThrottle",
        "brxsync.api.throttling.ServiceRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "seller": env.str("API_THROTTLE_SELLER", default="300/min"),
        "service": env.str("API_THROTTLE_SERVICE", default="3000/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "brxsync.api.pagination.CursorPage",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "brxsync.api.exceptions.api_exception_handler",
}
IDEMPOTENCY_RETENTION_HOURS = env.int("IDEMPOTENCY_RETENTION_HOURS", default=24)  # never below 24
IDEMPOTENCY_LOCK_SECONDS = env.int("IDEMPOTENCY_LOCK_SECONDS", default=120)
SPECTACULAR_SETTINGS = {
    "TITLE": "BRX Sync API",
    "DESCRIPTION": "Keeps Ebartex stock and CardTrader listings in agreement.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "OperationStateEnum": "syncops.models.OperationState",
        "OperationKindEnum": "syncops.models.OperationKind",
        "ConnectionStateEnum": "inventory.models.ConnectionState",
        "SyncStatusEnum": "inventory.models.SyncStatus",
    },
}

# --- Observability -------------------------------------------------------------------------
# Logs: structlog over stdlib, JSON lines (or console), context and redaction in every process.
# Django runs LOGGING_CONFIG once per process inside django.setup(); ours also connects the
# Celery context signals and, when OTEL_EXPORTER_OTLP_ENDPOINT is set, tracing (brxsync/tracing.py).
from brxsync import features as _features  # noqa: E402
from brxsync.observability.logs import build_logging_dict as _build_logging_dict  # noqa: E402

ENVIRONMENT = env.str("ENVIRONMENT", default="production")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
LOGGING_CONFIG = "brxsync.observability.bootstrap.configure"
LOGGING = _build_logging_dict(LOG_LEVEL, LOG_FORMAT)
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="brx-sync")
# Share of traces recorded (new root spans; children follow their parent's decision). 1.0 costs the
# webhook endpoint ~50 % of its throughput on 2 cores (docs/BENCHMARKS.md); raise it while debugging.
OTEL_TRACES_SAMPLE_RATIO = env.float("OTEL_TRACES_SAMPLE_RATIO", default=0.1)
# Celery workers serve their own metrics on this port (0 = off); see brxsync/metrics.py.
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)
FEATURE_FLAGS = _features.from_env(env)

# --- Static files, i18n, security ----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

if SENTRY_DSN:
    from brxsync.sentry import init_sentry

    init_sentry(SENTRY_DSN)
