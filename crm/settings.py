"""Switchboard settings.

With no environment at all it runs on embedded defaults: SQLite, the in-memory channel layer,
eager Celery and the local-memory cache. Production chooses PostgreSQL, Redis and a real Celery
broker through environment variables (see the README's configuration table).
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)
DEVELOPMENT_SECRET_KEY = "switchboard-embedded-insecure-key-change-me-in-production-0123456789"
SECRET_KEY = env("DJANGO_SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY in ("", DEVELOPMENT_SECRET_KEY):
    # Anyone who knows the published key can forge sessions, password-reset links and signed
    # media URLs: production must not start with it.
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set: with DJANGO_DEBUG=False Switchboard refuses to start with "
        "the built-in development key. Set DJANGO_SECRET_KEY to a long random string, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "crm.apps.SwitchboardAdminConfig",  # django.contrib.admin with our site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own origin (the CSP allows no CDN)
    "csp",
    "django_htmx",
    "django_celery_beat",
    "channels",
    "crm",
    "communications",
    "communications.notifications",
    "communications.saved_views",
    "integrations",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "crm.urls"
ASGI_APPLICATION = "crm.asgi.application"
WSGI_APPLICATION = "crm.wsgi.application"

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
                "reports.context.reports_link",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# An empty DATABASE_URL counts as unset (the embedded SQLite database).
DATABASES = {
    "default": env.db_url_config(
        env("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'switchboard.sqlite3'}"
    )
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a C-speed timestamptz loader (crm/postgresql/base.py).
    _db["ENGINE"] = "crm.postgresql"
    # Under ASGI every request may run in a different thread: a pool, not persistent connections.
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # Writers wait for each other instead of failing at once with "database is locked".
    _db.setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The collector of long-running processes (crm/gc_tuning.py): start-up objects frozen, the
# young generation collected every N net allocations; "python" keeps CPython's 700,10,10.
GC_THRESHOLD = env("GC_THRESHOLD", default="10000,10,10")

# --- Redis: channel layer, cache, Celery ----------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 defaults to a 5 s socket timeout, which kills idle receives.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                # Each web process reads one layer channel per inbox group (realtime_hub), so a
                # flood's events queue there: room for thousands before any is dropped.
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=5000),
                "expiry": 60,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "switchboard",
            # A Redis that is down or unreachable must fail fast (callers degrade), not hang.
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# kombu spells a Redis unix socket "redis+socket://"; redis-py and channels-redis say "unix://".
_broker_default = REDIS_URL.replace("unix://", "redis+socket://", 1) if REDIS_URL else "memory://"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=_broker_default)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
# Deployments (or test runs) sharing one Redis keep their tasks apart by queue name.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="celery")
# Arrivals have their own queue, so a backlog of sends never delays them (compose runs a worker
# for each; a worker started without -Q consumes both).
CELERY_WEBHOOK_QUEUE = env("CELERY_WEBHOOK_QUEUE", default=CELERY_TASK_DEFAULT_QUEUE + "-webhooks")
# Outgoing webhooks to integrators have a queue of their own too: a slow receiver never delays
# arrivals or sends.
CELERY_OUTGOING_QUEUE = env(
    "CELERY_OUTGOING_QUEUE", default=CELERY_TASK_DEFAULT_QUEUE + ".outgoing"
)
CELERY_TASK_QUEUES = {
    CELERY_TASK_DEFAULT_QUEUE: {},
    CELERY_WEBHOOK_QUEUE: {},
    CELERY_OUTGOING_QUEUE: {},
}
CELERY_TASK_ROUTES = {
    "communications.tasks.send_outgoing_webhooks": {"queue": CELERY_OUTGOING_QUEUE},
    "communications.tasks.sweep_outgoing_webhooks": {"queue": CELERY_OUTGOING_QUEUE},
    "communications.tasks.process_webhook_deliveries": {"queue": CELERY_WEBHOOK_QUEUE},
    "communications.tasks.sweep_webhook_deliveries": {"queue": CELERY_WEBHOOK_QUEUE},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# With acks_late, Redis hands a task that no worker acknowledged within visibility_timeout to
# another worker. kombu's default (1 h) left a killed worker's send invisible for an hour and
# then ran it again. Deliveries no longer depend on it (the claim stops a second provider call;
# the outbound sweeper settles a dead worker's claim once its lease ends), so this only bounds
# how long any other killed task waits. It must stay above the longest countdown we schedule
# (send retries wait at most 600 s), or every task waiting for its ETA would be run twice.
# Workers look for such tasks every `unacked_restore_interval` seconds (kombu's default scans
# only every 10th look, ~100 s; one cheap ZRANGEBYSCORE per look is fine).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
}
CELERY_BEAT_SCHEDULER = "crm.beat:HeartbeatScheduler"
CELERY_TIMEZONE = "UTC"
# Every periodic job, in one place; django-celery-beat's scheduler syncs these into its tables.
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "communications.tasks.worker_heartbeat", "schedule": 30.0},
    "prune-realtime-events": {
        "task": "communications.tasks.prune_realtime_events",
        "schedule": 3600.0,
    },
    # Re-queues sends whose task never ran and settles claims of dead workers (tasks.py).
    "sweep-outbound": {
        "task": "communications.tasks.sweep_outbound",
        "schedule": env.float("SEND_SWEEP_SECONDS", default=60.0),
    },
    "prune-early-statuses": {
        "task": "communications.tasks.prune_early_statuses",
        "schedule": 3600.0,
    },
    "matrix-backfill-recovery": {
        "task": "integrations.matrix.tasks.recover_stale_backfills",
        "schedule": 60.0,
    },
    # Drains the webhook log when no kick reached a worker (communications/webhooks.py).
    "sweep-webhook-deliveries": {
        "task": "communications.tasks.sweep_webhook_deliveries",
        "schedule": env.float("WEBHOOK_SWEEP_SECONDS", default=30.0),
    },
    # Outgoing webhooks (communications/services/outgoing_webhooks.py): retries that came due
    # and what no kick reached.
    "sweep-outgoing-webhooks": {
        "task": "communications.tasks.sweep_outgoing_webhooks",
        "schedule": env.float("OUTGOING_WEBHOOK_SWEEP_SECONDS", default=15.0),
    },
    "prune-outgoing-webhooks": {
        "task": "communications.tasks.prune_outgoing_webhooks",
        "schedule": 3600.0,
    },
    "prune-webhook-deliveries": {
        "task": "communications.tasks.prune_webhook_deliveries",
        "schedule": 3600.0,
    },
    # The reports' daily rollups of yesterday and today (reports/rollups.py).
    "refresh-report-rollups": {
        "task": "reports.tasks.refresh_rollups",
        "schedule": env.float("REPORT_ROLLUP_SECONDS", default=300.0),
    },
    # Long jobs (crm/jobs.py): re-queue quiet runs, fail overlong ones, resend lost tasks.
    "recover-stale-jobs": {"task": "crm.tasks.recover_stale_jobs", "schedule": 60.0},
    # Managers whose inbox sockets are all gone go offline (AVAILABILITY_OFFLINE_AFTER_SECONDS).
    "availability-offline": {
        "task": "communications.tasks.mark_absent_managers_offline",
        "schedule": 60.0,
    },
    # Snoozed conversations whose time has come are reopened.
    "reopen-snoozed": {"task": "communications.tasks.reopen_due_snoozed", "schedule": 60.0},
    # Each mailbox has its own interval (EmailAccount.poll_interval_seconds); this is the tick.
    "email-poll": {"task": "integrations.email.tasks.poll_mailboxes", "schedule": 60.0},
    # WhatsApp Cloud API message templates from each Business Account (templates.py).
    "whatsapp-sync-templates": {
        "task": "integrations.whatsapp_cloud.tasks.sync_all_templates",
        "schedule": 86400.0,
    },
}

# --- Auth, API ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
# ModelBackend that gives its database connection back before hashing a password (crm/auth.py).
AUTHENTICATION_BACKENDS = ["crm.auth.PoolFriendlyModelBackend"]

# --- Abuse limits (crm/throttle.py, crm/login.py, integrations/webhook_guard.py) ------------
# Peers whose X-Forwarded-For is believed (nginx); everyone else is known by the TCP address.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
# Authenticated webhook deliveries, per channel (Meta sends from a handful of addresses).
WEBHOOK_RATE_LIMIT = env("WEBHOOK_RATE_LIMIT", default="120000/minute")
# Failed webhook authentications (bad token/signature, unknown channel), per source address.
# The webhook log (communications/webhooks.py).
WEBHOOK_LOG_RETENTION_DAYS = env.int("WEBHOOK_LOG_RETENTION_DAYS", default=14)
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=500)
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=300)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
WEBHOOK_KICK_SECONDS = env.int("WEBHOOK_KICK_SECONDS", default=5)
# `manage.py drain_webhooks` wakes on NOTIFY; without one it looks this often (expired leases).
WEBHOOK_DRAINER_POLL_SECONDS = env.float("WEBHOOK_DRAINER_POLL_SECONDS", default=1.0)
WEBHOOK_STALL_SECONDS = env.int("WEBHOOK_STALL_SECONDS", default=120)
WEBHOOK_AUTH_FAILURE_LIMIT = env("WEBHOOK_AUTH_FAILURE_LIMIT", default="30/minute")
# The fast door (communications/webhook_door.py): rows per group commit, and how long a
# process keeps a channel (its secrets, kind, active flag) before reading it again.
WEBHOOK_DOOR_BATCH = env.int("WEBHOOK_DOOR_BATCH", default=500)
WEBHOOK_DOOR_CHANNEL_TTL = env.float("WEBHOOK_DOOR_CHANNEL_TTL", default=2.0)
# Outgoing webhooks to integrators (communications/services/outgoing_webhooks.py).
OUTGOING_WEBHOOK_TIMEOUT = env.float("OUTGOING_WEBHOOK_TIMEOUT", default=10.0)
OUTGOING_WEBHOOK_RETRY_BASE_SECONDS = env.float("OUTGOING_WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
OUTGOING_WEBHOOK_MAX_BACKOFF_SECONDS = env.float(
    "OUTGOING_WEBHOOK_MAX_BACKOFF_SECONDS", default=3600.0
)
OUTGOING_WEBHOOK_RETRY_HOURS = env.float("OUTGOING_WEBHOOK_RETRY_HOURS", default=24.0)
OUTGOING_WEBHOOK_DISABLE_AFTER_FAILURES = env.int(
    "OUTGOING_WEBHOOK_DISABLE_AFTER_FAILURES", default=10
)
OUTGOING_WEBHOOK_LEASE_SECONDS = env.int("OUTGOING_WEBHOOK_LEASE_SECONDS", default=120)
OUTGOING_WEBHOOK_BATCH_SIZE = env.int("OUTGOING_WEBHOOK_BATCH_SIZE", default=100)
OUTGOING_WEBHOOK_KICK_SECONDS = env.int("OUTGOING_WEBHOOK_KICK_SECONDS", default=2)
OUTGOING_WEBHOOK_LOG_RETENTION_DAYS = env.int("OUTGOING_WEBHOOK_LOG_RETENTION_DAYS", default=14)
# Sign-in attempts (/accounts/login/ and /admin/login/): per address + username, per address.
LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT", default="10/300s")
LOGIN_ADDRESS_RATE_LIMIT = env("LOGIN_ADDRESS_RATE_LIMIT", default="100/300s")
# Password hashes computed at once per process, and how long a sign-in waits for a turn.
LOGIN_CONCURRENT_HASHES = env.int("LOGIN_CONCURRENT_HASHES", default=2)
LOGIN_HASH_WAIT_SECONDS = env.float("LOGIN_HASH_WAIT_SECONDS", default=10.0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "communications.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "crm.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON nested too deep or holding NULs is a 400 naming the problem (crm/safe_json.py).
    "DEFAULT_PARSER_CLASSES": [
        "crm.safe_json.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard API",
    "DESCRIPTION": "Unified inbox: conversations, messages, contacts and channel webhooks.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "communications.api.schema.empty_query_values_mean_absent",
    ],
    # Swagger UI and ReDoc are shipped with the app (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No online validator badge (it would call another host).
    # No deep links: Swagger UI puts them as links inside its operation buttons (nested
    # controls a screen reader cannot reach; axe-core reports them).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False, "validatorUrl": None},
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "communications.models.Conversation.Status",
        "MessageStatusEnum": "communications.models.Message.Status",
        "OrderStatusEnum": "crm.models.Order.Status",
    },
}

# --- Files ----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
if DEBUG:
    # whitenoise warns about a missing STATIC_ROOT on every request; in development it is empty.
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Email ----------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="switchboard@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Who hears of a disabled outgoing webhook (mail_admins): comma-separated addresses.
ADMINS = [("", address) for address in env.list("DJANGO_ADMINS", default=[])]

# --- Security -------------------------------------------------------------------------------
# Secrets stored in the database (channel tokens, Matrix passwords) are Fernet-encrypted with
# keys derived (HKDF) from these; the first encrypts, all decrypt. Rotation: put a new key
# first, restart, run `manage.py rotate_secrets`, then drop the old key (docs/OPS.md).
# Production needs keys of their own: a leaked SECRET_KEY must not also open the secrets.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[SECRET_KEY] if DEBUG else [])
if not DEBUG and not [key for key in FIELD_ENCRYPTION_KEYS if key]:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS is not set: with DJANGO_DEBUG=False the secrets at rest need keys "
        "of their own (comma-separated, the first encrypts). An installation whose secrets were "
        "encrypted before with the default (DJANGO_SECRET_KEY) sets "
        "FIELD_ENCRYPTION_KEYS=<new key>,<its DJANGO_SECRET_KEY> and runs "
        "`manage.py rotate_secrets`."
    )
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # HSTS preloading cannot be undone quickly; it is the operator's call (SECURE_HSTS_PRELOAD).
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Content-Security-Policy (django-csp; Django 6 has one built in) ------------------------
# Every page: scripts and styles only from our own static files (no inline code, no
# handlers in attributes, no CDN), so injected markup cannot run. Media answers carry their
# own, stricter sandbox policy (communications/media.py) and are left alone here.
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/media/", "/api/v1/"],  # JSON needs no page policy
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # data: for the Connect WhatsApp QR code and the empty favicon; blob: for previews;
        # https: for an email's remote images, loaded only when the manager asks (email.js).
        "img-src": [SELF, "data:", "blob:", "https:"],
        "media-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Ops (docs/OPS.md): nginx sends protected media itself via X-Accel-Redirect ------------
MEDIA_X_ACCEL = env.bool("MEDIA_X_ACCEL", default=False)
MEDIA_X_ACCEL_PREFIX = env("MEDIA_X_ACCEL_PREFIX", default="/protected-media/")

# --- Switchboard ----------------------------------------------------------------------------
SWITCHBOARD = {
    # How long a near-identical inbound message (same sender, same text, no provider id) counts
    # as a redelivery rather than a new message.
    "CONTENT_DEDUP_WINDOW_SECONDS": 10,
    "SEND_MAX_RETRIES": env.int("SEND_MAX_RETRIES", default=6),
    "SEND_RETRY_BASE_SECONDS": env.float("SEND_RETRY_BASE_SECONDS", default=2.0),
    "PROVIDER_HTTP_TIMEOUT": env.float("PROVIDER_HTTP_TIMEOUT", default=10.0),
    # How long a delivery attempt may hold its claim (pending → sending) before the sweeper
    # takes the worker for dead: well above a provider call (uploads included), and the
    # task's hard time limit, so a live attempt never outlasts it.
    "SEND_LEASE_SECONDS": env.int("SEND_LEASE_SECONDS", default=120),
    # A pending message due longer ago than this, with nothing ahead of it, lost its task.
    "SEND_STUCK_AFTER_SECONDS": env.int("SEND_STUCK_AFTER_SECONDS", default=60),
    "WORKER_HEARTBEAT_MAX_AGE": 120,
    # Realtime events are kept this long for pages resuming after a reconnect; a page away for
    # longer gets "resync" and reloads its list.
    "REALTIME_EVENT_RETENTION_HOURS": env.int("REALTIME_EVENT_RETENTION_HOURS", default=72),
    # Participant info (R12): a contact's name and picture are fetched again from its platform
    # when older than this, on the sender's next message (communications/services/profiles.py).
    "PROFILE_REFRESH_HOURS": env.int("PROFILE_REFRESH_HOURS", default=24),
    # A manager whose last inbox socket has been gone this long is set offline by beat, and
    # auto-assignment passes them by (communications/services/assignment.py).
    "AVAILABILITY_OFFLINE_AFTER_SECONDS": env.int(
        "AVAILABILITY_OFFLINE_AFTER_SECONDS", default=300
    ),
    # Going offline (by choice or by beat) hands the manager's open conversations back to
    # their channel's auto-assignment (unassigned where the channel does not auto-assign).
    "AVAILABILITY_REQUEUE_ON_OFFLINE": env.bool("AVAILABILITY_REQUEUE_ON_OFFLINE", default=False),
    # How much one inbox socket may have been sent that its page has not acknowledged (pings
    # carry a sequence, pongs echo it): past it the page fell behind, relaying to it stops and
    # it is closed with 4429 (communications/consumers.py). Also what one slow tab can cost
    # the websocket server in memory.
    "WEBSOCKET_SEND_BUFFER_BYTES": env.int("WEBSOCKET_SEND_BUFFER_BYTES", default=2 * 1024 * 1024),
    # A merge of conversations or contacts can be undone this long (services/merge.py).
    "MERGE_UNDO_HOURS": env.int("MERGE_UNDO_HOURS", default=24),
    # Phone numbers written without a country code are read as numbers of this region when
    # duplicate contacts are looked for (E.164, `phonenumbers`); empty: only +numbers match.
    "PHONE_DEFAULT_REGION": env("PHONE_DEFAULT_REGION", default=""),
}

# Search (communications/search.py): the PostgreSQL text search configuration whose stemming
# applies to message text, combined with `simple` so names and numbers match as written.
# Changing it needs `manage.py rebuild_search_index` (the stored vectors use it).
SEARCH_TEXT_CONFIG = env("SEARCH_TEXT_CONFIG", default="english")

# --- Telegram (integrations/telegram) ----------------------------------------------------
# The Bot API's address: Telegram's own, or a local Bot API server (tests: a fake one).
TELEGRAM_API_BASE = env("TELEGRAM_API_BASE", default="https://api.telegram.org")
# --- Notifications: Web Push (communications/notifications, docs/NOTIFICATIONS.md) -----------
# `manage.py webpush_keys` prints a pair. Without both keys the inbox says Web Push is off.
VAPID_PUBLIC_KEY = env("VAPID_PUBLIC_KEY", default="")
VAPID_PRIVATE_KEY = env("VAPID_PRIVATE_KEY", default="")
# Who push services may contact about our pushes: mailto: or https:.
VAPID_SUBJECT = env("VAPID_SUBJECT", default="")
# The push services the worker may post to (host names, * wildcards): endpoints come from
# browsers, so anything else is refused rather than called.
WEBPUSH_ENDPOINT_HOSTS = env.list(
    "WEBPUSH_ENDPOINT_HOSTS",
    default=[
        "fcm.googleapis.com",
        "*.push.services.mozilla.com",
        "*.notify.windows.com",
        "*.push.apple.com",
    ],
)
# How long a push service keeps a push for an offline device; attempts and first retry delay.
WEBPUSH_TTL = env.int("WEBPUSH_TTL", default=43200)
WEBPUSH_MAX_ATTEMPTS = env.int("WEBPUSH_MAX_ATTEMPTS", default=4)
WEBPUSH_RETRY_BASE_SECONDS = env.float("WEBPUSH_RETRY_BASE_SECONDS", default=30.0)
WEBPUSH_TIMEOUT = env.float("WEBPUSH_TIMEOUT", default=10.0)
WEBPUSH_PREVIEW_CHARS = 160

# --- WhatsApp through Matrix (integrations/matrix) -------------------------------------------
# The mode's default until staff set it in admin → Matrix settings: "classical" | "matrix".
WHATSAPP_MODE = env("WHATSAPP_MODE", default="classical")
# How stale the last successful Matrix sync may be before /health/ calls it stale (seconds).
MATRIX_SYNC_MAX_LAG = env.int("MATRIX_SYNC_MAX_LAG", default=120)

# --- Messenger and Instagram (integrations/meta) ---------------------------------------------
# The Graph API every Messenger/Instagram call goes to (tests point it at a local fake).
META_GRAPH_BASE = env("META_GRAPH_BASE", default="https://graph.facebook.com/v21.0")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # Never echo SQL, whatever LOG_LEVEL says.
    "loggers": {"django.db.backends": {"level": "WARNING", "propagate": False}},
}
