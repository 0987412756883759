"""Django settings for the Assay registry. Everything is configurable by environment variable."""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from django.core.exceptions import ImproperlyConfigured

from assay.core import queueconfig

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ASSAY_VAR_DIR", BASE_DIR / "var"))


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _bool("ASSAY_DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or os.environ.get("ASSAY_SECRET_KEY") or "assay-dev-insecure-secret-key-change-me"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

from registry.security import check_secret_key  # noqa: E402  (plain function, no Django import needed)

check_secret_key(SECRET_KEY, ALLOWED_HOSTS, DEBUG)

# Served over https (directly, or behind a TLS proxy that sets X-Forwarded-Proto): HSTS and
# cookies that never travel over plain http.
ASSAY_TLS = _bool("ASSAY_TLS", False)
# Behind nginx (registry/nginx.py; `ASSAY_NGINX=1 make up`, docker-compose): nginx serves blob
# downloads itself (X-Accel-Redirect) and passes the client's address in X-Real-IP.
ASSAY_NGINX = _bool("ASSAY_NGINX", False)
if ASSAY_NGINX:
    RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
if ASSAY_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("ASSAY_HSTS_SECONDS", str(365 * 24 * 3600)))
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "registry",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "registry.security.RefuseNulMiddleware",  # a NUL in the path, query or a form: 400, not a database error
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "registry.security.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "registry.urls"
WSGI_APPLICATION = "registry.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'assay.sqlite3'}"), conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Writers take the lock at BEGIN, so concurrent web and worker writes wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [{"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"

# Assay
ASSAY_BLOB_DIR = Path(os.environ.get("ASSAY_BLOB_DIR", VAR_DIR / "blobs"))
# Blob storage: "local" (ASSAY_BLOB_DIR) or "s3" (S3-compatible object storage; downloads are
# pre-signed URLs on ASSAY_S3_PUBLIC_ENDPOINT, the address clients reach the store at).
ASSAY_STORAGE = os.environ.get("ASSAY_STORAGE", "local")
ASSAY_S3_ENDPOINT = os.environ.get("ASSAY_S3_ENDPOINT", "")
ASSAY_S3_PUBLIC_ENDPOINT = os.environ.get("ASSAY_S3_PUBLIC_ENDPOINT", "")
ASSAY_S3_BUCKET = os.environ.get("ASSAY_S3_BUCKET", "assay-blobs")
ASSAY_S3_ACCESS_KEY = os.environ.get("ASSAY_S3_ACCESS_KEY", "")
ASSAY_S3_SECRET_KEY = os.environ.get("ASSAY_S3_SECRET_KEY", "")
ASSAY_S3_REGION = os.environ.get("ASSAY_S3_REGION", "us-east-1")
if ASSAY_STORAGE not in ("local", "s3"):
    raise ImproperlyConfigured(f"ASSAY_STORAGE must be 'local' or 's3', not {ASSAY_STORAGE!r}")
ASSAY_KEY_DIR = Path(os.environ.get("ASSAY_KEY_DIR", VAR_DIR / "keys"))
ASSAY_LOG_ORIGIN = os.environ.get("ASSAY_LOG_ORIGIN", "assay.local/log")
# Witnesses (`assay witness serve`) asked to cosign every new checkpoint: comma-separated URLs.
ASSAY_WITNESSES = [u.strip() for u in os.environ.get("ASSAY_WITNESSES", "").split(",") if u.strip()]
ASSAY_WITNESS_TIMEOUT_S = float(os.environ.get("ASSAY_WITNESS_TIMEOUT_S", "5"))
# Cosignatures older than this are collected again before a checkpoint is served (clients count
# a cosignature only for a while: their policy's witnesses.max_age_s, one hour by default).
ASSAY_WITNESS_REFRESH_S = float(os.environ.get("ASSAY_WITNESS_REFRESH_S", "600"))
ASSAY_MAX_UPLOAD_BYTES = int(os.environ.get("ASSAY_MAX_UPLOAD_BYTES", str(256 * 1024**3)))
ASSAY_VERIFY_TIMEOUT_S = queueconfig.verify_timeout_s()
# How many registered verifiers each release is sent to: the first decides its status, each
# further one verifies it again on its own and adds its signed verdict (clients may require k).
ASSAY_VERIFIERS_PER_RELEASE = int(os.environ.get("ASSAY_VERIFIERS_PER_RELEASE", "1"))
# A further verifier asked for a second opinion that has not answered within this many seconds
# (or that was revoked) no longer counts as asked: another verifier that can take the job is asked
# (registry.tasks.ask_second_opinions, every ASSAY_REQUEUE_EVERY_S); its late answer still counts.
ASSAY_SECOND_OPINION_TIMEOUT_S = int(os.environ.get("ASSAY_SECOND_OPINION_TIMEOUT_S", str(6 * 3600)))
# Storage quotas in bytes (0 = none) and how long unfinished uploads and unused blobs are kept.
ASSAY_USER_QUOTA_BYTES = int(os.environ.get("ASSAY_USER_QUOTA_BYTES", str(500 * 1024**3)))
ASSAY_ORG_QUOTA_BYTES = int(os.environ.get("ASSAY_ORG_QUOTA_BYTES", str(5 * 1024**4)))
ASSAY_UPLOAD_TTL_S = int(os.environ.get("ASSAY_UPLOAD_TTL_S", str(7 * 24 * 3600)))
ASSAY_BLOB_TTL_S = int(os.environ.get("ASSAY_BLOB_TTL_S", str(7 * 24 * 3600)))

# Celery (Redis broker)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# The cache (rate-limit counters) lives in Redis too; keys carry the "assay" prefix.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": os.environ.get("ASSAY_CACHE_URL", REDIS_URL), "KEY_PREFIX": "assay", "TIMEOUT": 300}}
RATELIMIT_USE_CACHE = "default"
# Attempts per client IP (login, signup) or account (token creation): "count/period", period s, m, h or d.
ASSAY_RATE_LOGIN = os.environ.get("ASSAY_RATE_LOGIN", "10/m")
ASSAY_RATE_SIGNUP = os.environ.get("ASSAY_RATE_SIGNUP", "5/h")
ASSAY_RATE_TOKENS = os.environ.get("ASSAY_RATE_TOKENS", "30/h")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = queueconfig.verify_queue()
# The registry's own periodic tasks (registry/tasks.py) go to a queue of their own, which the
# registry's maintenance worker takes (it has the database; verifiers have not).
ASSAY_MAINTENANCE_QUEUE = CELERY_TASK_DEFAULT_QUEUE + "-registry"
CELERY_TASK_ROUTES = {"registry.tasks.*": {"queue": ASSAY_MAINTENANCE_QUEUE}}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = _bool("ASSAY_TASKS_EAGER", False)
# A task a dead worker took goes back to the queue after the visibility timeout, which must
# outlast a whole verification (assay/core/queueconfig.py, shared with the verifiers).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": queueconfig.visibility_timeout_s()}
# A release left uploaded, queued or verifying for longer than a task can be invisible (its
# message was lost, e.g. Redis restarted without persistence) is queued again by the periodic
# task registry.tasks.requeue_stalled (Celery beat in the registry's maintenance worker).
ASSAY_STALLED_AFTER_S = int(os.environ.get("ASSAY_STALLED_AFTER_S", str(CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] + 300)))
ASSAY_REQUEUE_EVERY_S = int(os.environ.get("ASSAY_REQUEUE_EVERY_S", "300"))
CELERY_BEAT_SCHEDULE = {
    "requeue-stalled": {"task": "registry.tasks.requeue_stalled", "schedule": float(ASSAY_REQUEUE_EVERY_S)},
    "ask-second-opinions": {"task": "registry.tasks.ask_second_opinions", "schedule": float(ASSAY_REQUEUE_EVERY_S)},
    "collect-garbage": {"task": "registry.tasks.collect_garbage", "schedule": float(os.environ.get("ASSAY_GC_EVERY_S", "3600"))},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("ASSAY_LOG_LEVEL", "INFO")},
}
