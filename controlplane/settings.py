"""dbpilot settings, read from the environment (12-factor).

Every setting is documented in docs/configuration.md. Secrets may be given as X or as
X_FILE (a path to a file holding the value).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from controlplane import redisconf

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

INSECURE_SECRET_KEY = "dbpilot-insecure-development-key-do-not-use-in-production"


def secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from NAME, or from the file named by NAME_FILE."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


DEBUG = env.bool("DEBUG", default=False)
DATA_ROOT = Path(env.str("DBPILOT_DATA_ROOT", default=str(BASE_DIR / "var")))
DATA_ROOT.mkdir(parents=True, exist_ok=True)

SECRET_KEY = secret("SECRET_KEY", INSECURE_SECRET_KEY)
if os.environ.get("DBPILOT_AGENT_HOST") and SECRET_KEY == INSECURE_SECRET_KEY:
    SECRET_KEY = os.urandom(32).hex()  # an agent signs nothing with it: a throwaway one, never the platform's
if not DEBUG and SECRET_KEY == INSECURE_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (or set DEBUG=1 for development).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])


def _generated_secret(name: str, make) -> str:
    """Development only: a secret generated once into DATA_ROOT and reused afterwards."""
    value = secret(name)
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off.")
    path = DATA_ROOT / f"{name.lower()}.secret"
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


# A dbpilot agent on a database host (`hosts` provider, clusters/agent/): a Celery worker of the queue
# host.<name> that gets only the broker and its own key. It has no control-plane database and no Fernet
# keys (docs/security.md): the ORM is unusable there and decrypting a stored secret fails.
DBPILOT_AGENT_HOST = env.str("DBPILOT_AGENT_HOST", default="")

# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation).
DBPILOT_FERNET_KEYS = (
    []
    if DBPILOT_AGENT_HOST
    else [
        k.strip()
        for k in _generated_secret("DBPILOT_FERNET_KEYS", lambda: Fernet.generate_key().decode()).split(",")
        if k.strip()
    ]
)
DBPILOT_TOKEN_PEPPER = (
    "" if DBPILOT_AGENT_HOST else _generated_secret("DBPILOT_TOKEN_PEPPER", lambda: os.urandom(32).hex())
)
DBPILOT_METRICS_TOKEN = secret("DBPILOT_METRICS_TOKEN")


def _networks(raw: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise ImproperlyConfigured(f"DBPILOT_ALLOWED_NETWORKS: {exc}") from exc


DBPILOT_ALLOWED_NETWORKS = _networks(env.str("DBPILOT_ALLOWED_NETWORKS", default="127.0.0.0/8,::1/128"))
DBPILOT_ALLOWED_SOCKET_DIRS = [
    Path(p.strip())
    for p in env.str("DBPILOT_ALLOWED_SOCKET_DIRS", default="/run/dbpilot").split(",")
    if p.strip()
]
# dbpilot's own services, never a tenant's target (controlplane/netpolicy.py): its web ports, and any
# other host:port to keep out of reach (Redis and the control-plane database are added from their URLs).
DBPILOT_WEB_PORTS = [int(p) for p in env.list("DBPILOT_WEB_PORTS", default=["8000"])]
DBPILOT_RESERVED_ENDPOINTS = env.list("DBPILOT_RESERVED_ENDPOINTS", default=[])
# Cluster registrations that failed (unreachable, refused credentials, an address not available), per
# token or person, within the window: past the limit, registrations answer 429 (like logins).
DBPILOT_REGISTRATION_MAX_FAILURES = env.int("DBPILOT_REGISTRATION_MAX_FAILURES", default=10)
DBPILOT_REGISTRATION_WINDOW_SECONDS = env.int("DBPILOT_REGISTRATION_WINDOW_SECONDS", default=300)
DBPILOT_ALLOWED_WEBHOOK_HOSTS = env.list("DBPILOT_ALLOWED_WEBHOOK_HOSTS", default=[])
# Where an allowed webhook host may resolve to: `public` (any globally routable address) and/or CIDRs.
# A name that resolves elsewhere (a private network, the metadata service, loopback) is refused, so a DNS
# answer that changes cannot turn an allowed host into a way into the operator's network.
_webhook_networks = [
    p.strip() for p in env.str("DBPILOT_ALLOWED_WEBHOOK_NETWORKS", default="public").split(",") if p.strip()
]
DBPILOT_WEBHOOK_PUBLIC_ALLOWED = "public" in _webhook_networks
DBPILOT_ALLOWED_WEBHOOK_NETWORKS = _networks(",".join(p for p in _webhook_networks if p != "public"))
# Alert emails (clusters/services/alerts.py) go through Django's mail backend.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = secret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="dbpilot@localhost")
DBPILOT_HOOKS_DIR = Path(env.str("DBPILOT_HOOKS_DIR", default=str(DATA_ROOT / "hooks")))
DBPILOT_HOOK_TIMEOUT_SECONDS = env.float("DBPILOT_HOOK_TIMEOUT_SECONDS", default=10.0)
DBPILOT_PROVIDERS = env.list("DBPILOT_PROVIDERS", default=["local"])
# The local provider's servers live under DATA_ROOT/servers, on ports from this range (docs/provisioning.md).
DBPILOT_LOCAL_SERVERS_ROOT = DATA_ROOT / "servers"
DBPILOT_LOCAL_PORTS = env.str("DBPILOT_LOCAL_PORTS", default="20000-20999")
# The kubernetes provider's client: a kubeconfig file (empty: the pod's service account). Not verified live.
DBPILOT_KUBERNETES_CONFIG = env.str("DBPILOT_KUBERNETES_CONFIG", default="")
# The kubernetes provider (docs/provisioning.md): the namespace its objects go in, the size of each server's
# volume claim, and how long it waits for a pod to be Ready (start, restart) or gone (stop, destroy).
DBPILOT_KUBERNETES_NAMESPACE = env.str("DBPILOT_KUBERNETES_NAMESPACE", default="dbpilot")
DBPILOT_KUBERNETES_STORAGE_GB = env.int("DBPILOT_KUBERNETES_STORAGE_GB", default=10)
DBPILOT_KUBERNETES_READY_SECONDS = env.float("DBPILOT_KUBERNETES_READY_SECONDS", default=300.0)
# The orphan sweep (docs/provisioning.md): every DBPILOT_ORPHAN_SWEEP_SECONDS (beat), each enabled
# provider's servers that no Server row and no active job own, and older than the grace, are destroyed.
DBPILOT_ORPHAN_GRACE_SECONDS = env.float("DBPILOT_ORPHAN_GRACE_SECONDS", default=600.0)
# The hosts provider: a host whose agent has not answered a ping for this long is down (nothing placed there).
DBPILOT_AGENT_DOWN_SECONDS = env.float("DBPILOT_AGENT_DOWN_SECONDS", default=10.0)
# Backups (docs/backups.md): a directory (the default) or an S3-compatible bucket; binlogs of primaries are
# flushed and copied every DBPILOT_BINLOG_ARCHIVE_SECONDS (the archive's RPO, plus the copy).
DBPILOT_BACKUP_STORAGE = env.str("DBPILOT_BACKUP_STORAGE", default="filesystem")
DBPILOT_BACKUP_ROOT = Path(env.str("DBPILOT_BACKUP_ROOT", default=str(DATA_ROOT / "backups")))
DBPILOT_BACKUP_S3_ENDPOINT = env.str("DBPILOT_BACKUP_S3_ENDPOINT", default="")
DBPILOT_BACKUP_S3_BUCKET = env.str("DBPILOT_BACKUP_S3_BUCKET", default="")
DBPILOT_BACKUP_S3_PREFIX = env.str("DBPILOT_BACKUP_S3_PREFIX", default="dbpilot")
DBPILOT_BACKUP_S3_REGION = env.str("DBPILOT_BACKUP_S3_REGION", default="")
DBPILOT_BACKUP_S3_ACCESS_KEY = env.str("DBPILOT_BACKUP_S3_ACCESS_KEY", default="")
DBPILOT_BACKUP_S3_SECRET_KEY = secret("DBPILOT_BACKUP_S3_SECRET_KEY")
DBPILOT_BINLOG_ARCHIVE_SECONDS = env.float("DBPILOT_BINLOG_ARCHIVE_SECONDS", default=5.0)
DBPILOT_DEFAULT_QUOTA_MEMORY_MB = env.int("DBPILOT_DEFAULT_QUOTA_MEMORY_MB", default=16384)
DBPILOT_PROBE_TIMEOUT_SECONDS = env.float("DBPILOT_PROBE_TIMEOUT_SECONDS", default=1.0)
DBPILOT_TICK_SHARD_SIZE = env.int("DBPILOT_TICK_SHARD_SIZE", default=25)
# A tick's single-flight lock is a lease its worker renews every second: a dead worker's clusters are
# ticked by the others once it lapses (clusters/hotstate.py).
DBPILOT_TICK_LOCK_SECONDS = env.float("DBPILOT_TICK_LOCK_SECONDS", default=3.0)
if DBPILOT_TICK_LOCK_SECONDS < 2:
    raise ImproperlyConfigured(
        "DBPILOT_TICK_LOCK_SECONDS must be at least 2 (its holder renews it every second)."
    )
DBPILOT_DEFAULT_QUOTA_CLUSTERS = env.int("DBPILOT_DEFAULT_QUOTA_CLUSTERS", default=50)
DBPILOT_DEFAULT_QUOTA_SERVERS = env.int("DBPILOT_DEFAULT_QUOTA_SERVERS", default=200)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally: /api/docs/ works without a CDN
    "guardian",
    "channels",
    "tenants",
    "clusters",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "controlplane.unavailable.ServiceUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "controlplane.api.errors.ApiErrorsMiddleware",
]
CSRF_FAILURE_VIEW = "controlplane.api.errors.csrf_failure"

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
ASGI_APPLICATION = "controlplane.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "controlplane" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The control-plane database: SQLite by default, PostgreSQL through DATABASE_URL. Never MySQL/MariaDB:
# the job engine relies on conditional unique constraints, which Django does not enforce there.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": env.db("DATABASE_URL")}
    _engine = DATABASES["default"]["ENGINE"]
    if "mysql" in _engine:
        raise ImproperlyConfigured(
            "DATABASE_URL: MySQL/MariaDB cannot hold dbpilot's control-plane database; use PostgreSQL or SQLite."
        )
    if _engine.endswith("sqlite3"):
        DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_ROOT / "dbpilot.sqlite3"),
            "OPTIONS": SQLITE_OPTIONS,
        }
    }
if os.environ.get("DBPILOT_AGENT_HOST"):
    # An agent never reaches the control-plane database: any ORM use fails loudly (dummy backend).
    DATABASES = {"default": {"ENGINE": "django.db.backends.dummy"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user object
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_ROOT / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "controlplane" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# HTTPS deployments: send the session and CSRF cookies over HTTPS only (docs/security.md).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DBPILOT_SECURE_COOKIES", default=False)
# Portal login rate limit: this many failures per client address, or per account, within the window.
DBPILOT_LOGIN_MAX_FAILURES = env.int("DBPILOT_LOGIN_MAX_FAILURES", default=10)
DBPILOT_LOGIN_WINDOW_SECONDS = env.int("DBPILOT_LOGIN_WINDOW_SECONDS", default=300)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.BearerTokenAuthentication",
        "tenants.authentication.PortalSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "controlplane.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "controlplane.api.errors.exception_handler",
    # A JSON body is an object of bounded depth (a 400 otherwise, never a RecursionError).
    "DEFAULT_PARSER_CLASSES": [
        "controlplane.api.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "dbpilot API",
    "DESCRIPTION": "Control plane for MariaDB/MySQL replication clusters.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
try:
    REDIS_TARGET = redisconf.parse(REDIS_URL)
except redisconf.RedisUrlError as exc:
    raise ImproperlyConfigured(f"REDIS_URL: {exc}") from exc

CELERY_BROKER_URL = redisconf.broker_url(REDIS_TARGET)
CELERY_BROKER_TRANSPORT_OPTIONS = redisconf.broker_transport_options(REDIS_TARGET)
# Results are kept only by the tasks that ask for them (the agents' operations, clusters/agent/tasks.py):
# every other task ignores its result.
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Beat: any number of `celery -A controlplane beat`, one active through a lease in Redis (controlplane/beat.py).
DBPILOT_BEAT_LEASE_SECONDS = env.int("DBPILOT_BEAT_LEASE_SECONDS", default=3)
if DBPILOT_BEAT_LEASE_SECONDS < 2:
    raise ImproperlyConfigured(
        "DBPILOT_BEAT_LEASE_SECONDS must be at least 2 (the active beat renews it every second)."
    )
CELERY_BEAT_SCHEDULER = "controlplane.beat:LeasedScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 1  # the active beat renews its lease, a standby tries to take it, each second

# Redis pub/sub channels ignore the database number: two installs (or test runs) sharing one Redis server
# would receive each other's websocket messages unless their channel names differ.
DBPILOT_CHANNELS_PREFIX = env.str("DBPILOT_CHANNELS_PREFIX", default=f"dbpilot.db{REDIS_TARGET.db}")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [redisconf.channel_host(REDIS_TARGET)], "prefix": DBPILOT_CHANNELS_PREFIX},
    }
}
if env.bool("DBPILOT_IN_MEMORY_CHANNELS", default=False):  # tests that need no Redis only
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

from controlplane.queues import CELERY_TASK_DEFAULT_QUEUE, CELERY_TASK_QUEUES, CELERY_TASK_ROUTES  # noqa: E402,F401
