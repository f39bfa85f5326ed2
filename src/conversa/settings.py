"""Settings, driven by environment variables so one build runs embedded or in production.

Embedded default: SQLite (WAL), in-memory channel layer, task worker thread in the web process.
Production: DATABASE_URL=postgres://..., REDIS_URL=redis://..., CONVERSA_EMBEDDED_WORKER=0 and a
separate `manage.py conversa_worker` process.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent.parent
VAR_DIR = Path(os.environ.get("CONVERSA_VAR_DIR", PROJECT_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", False)
# The embedded demo is the one process with neither DATABASE_URL nor REDIS_URL; anything else is a
# production deployment and gets no demo defaults (secret key, customer simulator).
EMBEDDED_DEMO = not (os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"))
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not EMBEDDED_DEMO:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. A production process (DATABASE_URL or REDIS_URL set) refuses to start "
            "with the public demo key, which would let anyone forge sessions and password-reset links. "
            "Set SECRET_KEY to a long random value, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'` (see docs/operations.md).")
    SECRET_KEY = "insecure-demo-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
# Behind a TLS-terminating proxy (docs/operations.md): HTTPS only, cookies only over HTTPS, HSTS, and
# the proxy's X-Forwarded-* headers trusted (by Django for the scheme, by the login limiter for the
# client address). Without it, those headers are the client's to forge and are ignored.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", BEHIND_TLS_PROXY)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", BEHIND_TLS_PROXY)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers and uptime probes call the health check over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    # Sent from Conversa's own host, so they cover that host and its subdomains only.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# Absolute base URL the providers use to fetch our outbound media (Meta/GupShup send media by link).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Unset: the back office shows webhook URLs on the host the administrator browses (the request's).
PUBLIC_BASE_URL_CONFIGURED = bool(os.environ.get("PUBLIC_BASE_URL"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "drf_spectacular",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "conversa.core",
    "conversa.accounts",
    "conversa.contacts",
    "conversa.campaigns",
    "conversa.whatsapp",
    "conversa.inbox",
    "conversa.outreach",
    "conversa.realtime",
    "conversa.reports",
    "conversa.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused by the limiter into the lockout page (conversa.accounts.lockout).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "conversa.urls"
ASGI_APPLICATION = "conversa.asgi.application"
WSGI_APPLICATION = "conversa.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

SQLITE_PATH = Path(os.environ.get("SQLITE_PATH", VAR_DIR / "conversa.sqlite3"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    # A bounded connection pool per process (psycopg_pool through Django's built-in support). Under
    # ASGI every request runs in a fresh thread, so CONN_MAX_AGE never reused a connection: each
    # request opened one and left it idle, and a burst ran PostgreSQL out of connections (500s).
    # With the pool a request borrows a connection and gives it back when it ends; a burst larger
    # than the pool waits for a free one (up to POOL_TIMEOUT s) instead of failing. A connection is
    # checked before it is lent, so one broken by a PostgreSQL restart is replaced, not handed out.
    # Per process: at most CONVERSA_DB_POOL_MAX connections (docs/operations.md, "Connections").
    DATABASES: dict[str, Any] = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    # With a pool, Django turns this into psycopg_pool's check of each connection before lending it.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": int(os.environ.get("CONVERSA_DB_POOL_MIN", "2")),
        "max_size": int(os.environ.get("CONVERSA_DB_POOL_MAX", "10")),
        "timeout": float(os.environ.get("CONVERSA_DB_POOL_TIMEOUT", "20")),
    }
    # PgBouncer in transaction mode cannot keep server-side cursors open.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DISABLE_SERVER_SIDE_CURSORS", False)
    if os.environ.get("CONVERSA_TEST_DB_NAME"):
        # Lets two test runs share one PostgreSQL server without dropping each other's database.
        DATABASES["default"]["TEST"] = {"NAME": os.environ["CONVERSA_TEST_DB_NAME"]}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on the
                # busy timeout instead of failing with "database is locked" mid-transaction.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, not :memory:, so live-server threads and the worker see the same data.
            "TEST": {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # Redis pub/sub: each web process subscribes once per group its sockets listen to and hands
    # events to them in memory (realtime.fanout, decisions #43); nothing is queued per socket in
    # Redis. Pub/sub delivers at most once: the event log repairs what a restart loses.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # Publishing must not hang on a dead connection; the subscription reads with
                # timeouts of its own.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}],
                # Namespaces channels, so several deployments (or test runs) can share a Redis.
                "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "conversa"),
            },
        }
    }
else:
    # One process: the hub's one channel receives every event; a burst of a big transaction's
    # events must fit (a full channel drops silently; the log re-read would repair it).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer",
                                  "CONFIG": {"capacity": 10000}}}
# The event log behind websocket catch-up (realtime/): rows older than the retention are pruned
# by the worker's sweep; a reconnecting socket further behind than the replay limits is told to
# refetch instead of being replayed.
CONVERSA_EVENT_RETENTION = float(os.environ.get("CONVERSA_EVENT_RETENTION", str(24 * 3600)))
CONVERSA_EVENT_REPLAY_MAX_AGE = float(os.environ.get("CONVERSA_EVENT_REPLAY_MAX_AGE", "600"))
CONVERSA_EVENT_REPLAY_MAX_EVENTS = int(os.environ.get("CONVERSA_EVENT_REPLAY_MAX_EVENTS", "1000"))
# Each web process re-reads the log this often (seconds), once for all its sockets, for events their
# live feed missed: a publish that failed twice, messages lost in a Redis restart, a full channel.
CONVERSA_EVENT_RECHECK_EVERY = float(os.environ.get("CONVERSA_EVENT_RECHECK_EVERY", "10"))
# Agent presence (accounts/services.py, realtime/presence.py): an agent whose last console socket
# closed this many seconds ago becomes offline (checked by the worker's sweep). Each web process
# refreshes the rows of the sockets it holds every HEARTBEAT_EVERY seconds (one UPDATE per process);
# a row not refreshed for STALE_AFTER seconds was left by a process that died (kill -9, OOM) and is
# deleted by the sweep, a live socket's never (decisions #60).
CONVERSA_PRESENCE_GRACE = float(os.environ.get("CONVERSA_PRESENCE_GRACE", "60"))
CONVERSA_PRESENCE_HEARTBEAT_EVERY = float(os.environ.get("CONVERSA_PRESENCE_HEARTBEAT_EVERY", "30"))
CONVERSA_PRESENCE_STALE_AFTER = float(os.environ.get("CONVERSA_PRESENCE_STALE_AFTER", "100"))

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "webhooks", "outbound", "media", "bulk"],
    }
}
# Run the task worker as a thread inside the web process (embedded mode only: the in-memory
# channel layer cannot cross processes).
CONVERSA_EMBEDDED_WORKER = env_bool("CONVERSA_EMBEDDED_WORKER", not REDIS_URL)
# Workers are woken by notifications (PostgreSQL LISTEN/NOTIFY, in-process for SQLite); this is only
# their fallback poll, for a notification that got lost (docs/decisions.md #40).
CONVERSA_WORKER_INTERVAL = float(os.environ.get("CONVERSA_WORKER_INTERVAL", "2"))
# Webhook events a worker claims and applies in one transaction.
CONVERSA_WEBHOOK_BATCH = int(os.environ.get("CONVERSA_WEBHOOK_BATCH", "100"))
# Worker liveness and the queue's housekeeping (docs/operations.md, "Workers"): each worker beats
# every HEARTBEAT_EVERY seconds; a worker silent for STALE_AFTER seconds is dead, and the task rows it
# left RUNNING are run again (at most TASK_MAX_RUNS runs per row, then failed). One worker at a
# time sweeps, every SWEEP_EVERY seconds. Finished task rows are deleted after TASK_RETENTION seconds.
CONVERSA_WORKER_HEARTBEAT_EVERY = float(os.environ.get("CONVERSA_WORKER_HEARTBEAT_EVERY", "5"))
CONVERSA_WORKER_STALE_AFTER = float(os.environ.get("CONVERSA_WORKER_STALE_AFTER", "30"))
CONVERSA_SWEEP_EVERY = float(os.environ.get("CONVERSA_SWEEP_EVERY", "10"))
CONVERSA_TASK_MAX_RUNS = int(os.environ.get("CONVERSA_TASK_MAX_RUNS", "5"))
CONVERSA_TASK_RETENTION = float(os.environ.get("CONVERSA_TASK_RETENTION", str(24 * 3600)))
# Queues every worker serves before the others (agent replies never wait behind a webhook backlog).
CONVERSA_FIRST_QUEUES = ["outbound"]
# /healthz/ answers 503 past these: unprocessed webhook events (count, age of the oldest in
# seconds), and, when REQUIRE_WORKER (default: outside the embedded demo), no worker heartbeat
# fresher than STALE_AFTER.
CONVERSA_HEALTH_MAX_BACKLOG = int(os.environ.get("CONVERSA_HEALTH_MAX_BACKLOG", "1000"))
CONVERSA_HEALTH_MAX_BACKLOG_AGE = float(os.environ.get("CONVERSA_HEALTH_MAX_BACKLOG_AGE", "300"))
CONVERSA_HEALTH_REQUIRE_WORKER = env_bool("CONVERSA_HEALTH_REQUIRE_WORKER", not CONVERSA_EMBEDDED_WORKER)

if env_bool("CONVERSA_FAST_PASSWORD_HASHING", False):
    # Test runs only (tests/conftest.py sets it, and servers they spawn inherit it).
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# One login limiter (django-axes) in front of every password check: console, admin, API token.
# Failures are counted in the database (shared by every process, listed in the admin as an audit
# trail) per account and per client address; either reaching the limit locks it for the cool-off.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "conversa.accounts.backends.ModelBackendWithProfile",
    # Sessions signed in before ModelBackendWithProfile name this one; they stay valid.
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = int(os.environ.get("CONVERSA_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("CONVERSA_LOGIN_COOLOFF_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True  # every failure, with address and path, for the audit trail
AXES_LOCKOUT_CALLABLE = "conversa.accounts.lockout.lockout_response"
AXES_COOLOFF_MESSAGE = _("Too many failed login attempts. Try again in a few minutes, or ask an admin to unlock you.")
# The client address: the TCP peer, or behind our own proxy the address it appended to
# X-Forwarded-For (CONVERSA_TRUSTED_PROXIES = how many proxies append to it, ours included).
if BEHIND_TLS_PROXY:
    AXES_IPWARE_META_PRECEDENCE_ORDER: tuple[str, ...] = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_ORDER = "left-most"
    AXES_IPWARE_PROXY_COUNT = max(int(os.environ.get("CONVERSA_TRUSTED_PROXIES", "1")) - 1, 0)
    # Entries a client forged in front of the chain are skipped, not a reason to fall back to the
    # proxy's own address (which would pool every forger with everyone else behind the proxy).
    IPWARE_STRICT = False
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedStaticFilesStorage"},
}
SERVESTATIC_USE_FINDERS = True
SERVESTATIC_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "conversa.accounts.tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's JSON, written by orjson (decisions #62); the browsable API stays for people.
    "DEFAULT_RENDERER_CLASSES": ["conversa.core.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "conversa.core.api.exception_handler",
    # Bounded size and nesting depth, finite numbers: a hostile body is a 400/413, never a 500.
    "DEFAULT_PARSER_CLASSES": [
        "conversa.core.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Conversa API",
    "DESCRIPTION": "WhatsApp contact center: inboxes, capture, replies, templates, dispositions.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Every 4xx is documented with the one error envelope (conversa.core.api).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "conversa.core.api.document_error_envelope"],
    # Several "status" fields with different choices: name the one spectacular cannot (W001).
    "ENUM_NAME_OVERRIDES": {"AgentStatusEnum": "conversa.accounts.models.AgentProfile.Status"},
}

# API tokens (`Authorization: Token <key>`) expire this many hours after they are issued; the token
# endpoint issues a new one on every login. Logging out of the console revokes the user's tokens.
# Only a SHA-512 digest of each token is stored (django-rest-knox; decisions #68).
CONVERSA_API_TOKEN_TTL_HOURS = float(os.environ.get("CONVERSA_API_TOKEN_TTL_HOURS", "12"))
# Live tokens one user may hold (one per device or script); a login beyond it revokes her oldest.
CONVERSA_API_TOKENS_PER_USER = int(os.environ.get("CONVERSA_API_TOKENS_PER_USER", "10"))
REST_KNOX = {"AUTH_HEADER_PREFIX": "Token"}

# The sandbox customer simulator (/sandbox/ and its websocket) needs no login: it is the demo.
# On by default only in the embedded demo; a production deployment turns it on explicitly.
CONVERSA_SANDBOX_SIMULATOR = env_bool("CONVERSA_SANDBOX_SIMULATOR", EMBEDDED_DEMO)
# Customer phone numbers without a leading + are read in this region.
CONVERSA_DEFAULT_REGION = os.environ.get("CONVERSA_DEFAULT_REGION", "AR")
# Meta's customer-service window.
CONVERSA_WINDOW_HOURS = 24
# Outbound send retries (rate limits, 5xx, network): exponential backoff with jitter.
CONVERSA_SEND_MAX_ATTEMPTS = int(os.environ.get("CONVERSA_SEND_MAX_ATTEMPTS", "6"))
CONVERSA_SEND_BACKOFF_BASE = float(os.environ.get("CONVERSA_SEND_BACKOFF_BASE", "2.0"))
# A send's claim older than this (seconds) belongs to a worker that died mid-call: the message is
# marked unconfirmed, never sent again by itself. Must exceed PROVIDER_HTTP_TIMEOUT plus
# CONVERSA_SEND_RECORD_RETRY_FOR.
CONVERSA_SEND_CLAIM_TIMEOUT = float(os.environ.get("CONVERSA_SEND_CLAIM_TIMEOUT", "300"))
# How long (seconds) a worker keeps trying to write a send's result when the database fails after
# the provider accepted it (the provider's id is kept in memory meanwhile).
CONVERSA_SEND_RECORD_RETRY_FOR = float(os.environ.get("CONVERSA_SEND_RECORD_RETRY_FOR", "30"))
# An unconfirmed message no status callback confirmed within this many seconds is offered to the
# agent: "Not confirmed — resend?".
CONVERSA_UNCONFIRMED_AFTER = float(os.environ.get("CONVERSA_UNCONFIRMED_AFTER", "300"))
# Bulk template sends (outreach): the default rate per line (messages/s; Meta's default tier is 80),
# sends in flight at once, how long a runner holds a job (renewed every round; a dead runner's job
# is taken over after it), and how long after a bulk message a customer's first message counts as
# a reply to it (routed to the job's campaign, linked to the job).
CONVERSA_BULK_DEFAULT_RATE = int(os.environ.get("CONVERSA_BULK_DEFAULT_RATE", "80"))
CONVERSA_BULK_CONCURRENCY = int(os.environ.get("CONVERSA_BULK_CONCURRENCY", "8"))
CONVERSA_BULK_LEASE_SECONDS = float(os.environ.get("CONVERSA_BULK_LEASE_SECONDS", "30"))
CONVERSA_BULK_SLICE_SECONDS = float(os.environ.get("CONVERSA_BULK_SLICE_SECONDS", "5"))
CONVERSA_BULK_REPLY_HOURS = float(os.environ.get("CONVERSA_BULK_REPLY_HOURS", "72"))
# Seconds between a process's attempts to replace a pooled PostgreSQL connection that failed
# (core.dbpool): after a restart, a process is whole again within this of the server's return.
CONVERSA_DB_RECONNECT_EVERY = float(os.environ.get("CONVERSA_DB_RECONNECT_EVERY", "0.5"))
# Threads per web process writing acknowledged webhooks (whatsapp.fast_intake): each holds one
# pooled connection; more than one overlaps a batch's commit (its WAL flush) with the next batch.
CONVERSA_WEBHOOK_WRITERS = max(1, int(os.environ.get("CONVERSA_WEBHOOK_WRITERS", "2")))
# Seconds a webhook writer waits after a request arrives for others to commit with it (one
# commit, one worker wake-up per batch); the most an acknowledgement is delayed on a quiet line.
CONVERSA_WEBHOOK_GATHER = max(0.0, float(os.environ.get("CONVERSA_WEBHOOK_GATHER", "0.004")))
# A webhook event whose processing failed is claimed again after this many seconds.
CONVERSA_WEBHOOK_SWEEP_AFTER = float(os.environ.get("CONVERSA_WEBHOOK_SWEEP_AFTER", "30"))
# A webhook item that failed (the rest of its batch applied) is tried again after this many
# seconds, doubling per attempt up to an hour; inbound media downloads back off the same way.
CONVERSA_WEBHOOK_ITEM_RETRY_AFTER = float(os.environ.get("CONVERSA_WEBHOOK_ITEM_RETRY_AFTER", "30"))
# Provider API base URLs: settings so tests point them at a local fake server.
META_GRAPH_BASE_URL = os.environ.get("META_GRAPH_BASE_URL", "https://graph.facebook.com")
META_GRAPH_VERSION = os.environ.get("META_GRAPH_VERSION", "v21.0")
GUPSHUP_BASE_URL = os.environ.get("GUPSHUP_BASE_URL", "https://api.gupshup.io")
GUPSHUP_PARTNER_BASE_URL = os.environ.get("GUPSHUP_PARTNER_BASE_URL", "https://partner.gupshup.io")
PROVIDER_HTTP_TIMEOUT = float(os.environ.get("PROVIDER_HTTP_TIMEOUT", "15"))
# Contact imports (contacts.imports): the largest file and row count accepted, and the rows written per
# transaction (the resume checkpoint moves once per batch).
CONVERSA_IMPORT_MAX_BYTES = int(os.environ.get("CONVERSA_IMPORT_MAX_BYTES", str(50 * 1024 * 1024)))
CONVERSA_IMPORT_MAX_ROWS = int(os.environ.get("CONVERSA_IMPORT_MAX_ROWS", "1000000"))
CONVERSA_IMPORT_BATCH = int(os.environ.get("CONVERSA_IMPORT_BATCH", "1000"))
# A failed or never-mapped import's uploaded file (customers' names and phones) is kept this long for
# a retry or a mapping, then deleted; a finished import's file goes at once (contacts.imports).
CONVERSA_IMPORT_FILE_RETENTION_HOURS = float(os.environ.get("CONVERSA_IMPORT_FILE_RETENTION_HOURS", "168"))
# Upload limits, per WhatsApp's media limits.
CONVERSA_MEDIA_LIMITS = {
    "image": (5 * 1024 * 1024, ["image/jpeg", "image/png", "image/webp"]),
    "video": (16 * 1024 * 1024, ["video/mp4", "video/3gpp"]),
    "audio": (16 * 1024 * 1024, ["audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg"]),
    "document": (
        100 * 1024 * 1024,
        [
            "application/pdf",
            "text/plain",
            "text/csv",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ],
    ),
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Media is served only through views that check who asks (docs/operations.md, "Media"). Behind nginx,
# set this to the prefix of an `internal` location aliasing MEDIA_ROOT: nginx then sends the bytes.
CONVERSA_MEDIA_ACCEL_REDIRECT_PREFIX = os.environ.get("CONVERSA_MEDIA_ACCEL_REDIRECT_PREFIX", "")
# Lifetime (seconds) of the signed links providers fetch our outbound media from.
CONVERSA_MEDIA_LINK_MAX_AGE = int(os.environ.get("CONVERSA_MEDIA_LINK_MAX_AGE", str(24 * 3600)))
# Server-side fetches of outside URLs (media links in provider payloads) refuse internal addresses;
# these hosts ("host" or "host:port", comma separated) are exempt. For tests; empty in production.
CONVERSA_FETCH_ALLOWED_HOSTS = [h.strip() for h in os.environ.get("CONVERSA_FETCH_ALLOWED_HOSTS", "").split(",")
                                if h.strip()]
# Overall time limit (seconds) of one fetch, redirects and body included.
CONVERSA_FETCH_TOTAL_TIMEOUT = float(os.environ.get("CONVERSA_FETCH_TOTAL_TIMEOUT", "120"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django_tasks_db": {"level": "WARNING"}, "django_tasks": {"level": "WARNING"}},
}
