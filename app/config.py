"""Configuration from environment variables, with defaults that work with no configuration at all."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: Every crawled source's URL variable and its default (the real public endpoint).
SOURCE_URL_DEFAULTS: dict[str, str] = {
    "GRANTS_GOV_API_URL": "https://api.grants.gov/v1/api",
    "GRANTS_GOV_EXTRACT_URL": "https://www.grants.gov/xml-extract",
    "OJP_FUNDING_URL": "https://bja.ojp.gov/funding-api",
    "DOL_ETA_URL": "https://www.dol.gov/agencies/eta/grants/apply/find-opportunities",
    "ED_FORECAST_URL": "https://www.ed.gov/grants-and-programs/apply-grant/forecast-funding-opportunities",
    "SAMHSA_NOFO_URL": "https://www.samhsa.gov/grants/grants-dashboard",
}


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _secret_key(instance_path: Path) -> str:
    """``SECRET_KEY`` from the environment, else one generated once and kept in ``instance/``.

    No secret is ever in the repository, and sessions survive a restart on a developer machine.
    """
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        return from_env
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def load_config(instance_path: Path) -> dict[str, Any]:
    """Read the configuration table of the README from the environment."""
    env = os.environ.get
    config: dict[str, Any] = {
        "SECRET_KEY": _secret_key(instance_path),
        "DATABASE_URL": env("DATABASE_URL") or f"sqlite:///{instance_path / 'cvi.db'}",
        "DATABASE_RETRY_SECONDS": float(env("DATABASE_RETRY_SECONDS") or 30),
        "INDEX_DIR": env("INDEX_DIR") or str(instance_path / "index"),
        "BASE_URL": (env("BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "SMTP_HOST": env("SMTP_HOST") or "127.0.0.1",
        "SMTP_PORT": int(env("SMTP_PORT") or 25),
        "SMTP_USERNAME": env("SMTP_USERNAME") or None,
        "SMTP_PASSWORD": env("SMTP_PASSWORD") or None,
        "SMTP_STARTTLS": _bool(env("SMTP_STARTTLS"), False),
        "SMTP_TIMEOUT": float(env("SMTP_TIMEOUT") or 30),
        "MAIL_FROM": env("MAIL_FROM") or "CVI Funding Finder <alerts@cvi-funding-finder.invalid>",
        "CRAWL_CONTACT": env("CRAWL_CONTACT") or "ops@cvi-funding-finder.invalid",
        "CRAWL_ARCHIVE_DIR": env("CRAWL_ARCHIVE_DIR") or str(instance_path / "crawl-archive"),
        "BACKUP_DIR": env("BACKUP_DIR") or str(instance_path / "backups"),
        "CORS_ORIGINS": [o.strip() for o in (env("CORS_ORIGINS") or "").split(",") if o.strip()],
        "LOG_LEVEL": env("LOG_LEVEL") or "INFO",
        "PAGE_SIZE": int(env("PAGE_SIZE") or 25),
        "ADMIN_REVIEW_BAND": float(env("ADMIN_REVIEW_BAND") or 0.15),
        "API_ANON_RATE_LIMIT": int(env("API_ANON_RATE_LIMIT") or 30),
        "API_CACHE_SECONDS": int(env("API_CACHE_SECONDS") or 60),
        "API_VERSION_CHECK_SECONDS": float(env("API_VERSION_CHECK_SECONDS") or 1),
        "API_KEY_CACHE_SECONDS": float(env("API_KEY_CACHE_SECONDS") or 5),
        "API_USAGE_FLUSH_SECONDS": float(env("API_USAGE_FLUSH_SECONDS") or 5),
        "WTF_CSRF_ENABLED": _bool(env("WTF_CSRF_ENABLED"), True),
    }
    config.update(_security_config(env, config["BASE_URL"]))
    config.update(_alert_config(env))
    config.update(_crawl_config(env))
    for name, default in SOURCE_URL_DEFAULTS.items():
        config[name] = env(name) or default
    return config


def _security_config(env: Any, base_url: str) -> dict[str, Any]:
    """Cookies, sessions, proxies and HSTS (see SECURITY.md).

    Cookies are ``Secure`` whenever the public address is https (or ``SESSION_COOKIE_SECURE`` says so);
    a Secure session cookie also takes the ``__Host-`` prefix, so no subdomain can set or read it.
    """
    secure = _bool(env("SESSION_COOKIE_SECURE"), base_url.startswith("https://"))
    session_hours = float(env("SESSION_MAX_AGE_HOURS") or 14 * 24)
    return {
        "SESSION_COOKIE_NAME": "__Host-session" if secure else "session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_PATH": "/",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure,
        "SESSION_MAX_AGE_HOURS": session_hours,
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=session_hours),
        "TRUSTED_PROXIES": int(env("TRUSTED_PROXIES") or 0),
        "HSTS_MAX_AGE": int(env("HSTS_MAX_AGE") or 365 * 24 * 3600),
        "SECURITY_CONTACT": env("SECURITY_CONTACT") or f"security@{_domain(base_url)}",
    }


def _domain(base_url: str) -> str:
    """The host of the public address (``security@`` that host is the default security contact)."""
    return urlsplit(base_url).hostname or "localhost"


def _crawl_config(env: Any) -> dict[str, Any]:
    """How patient the crawlers are with a slow or failing source (``app.services.crawling``)."""
    return {
        "CRAWL_TIMEOUT": float(env("CRAWL_TIMEOUT") or 30),
        "CRAWL_REQUEST_DEADLINE": float(env("CRAWL_REQUEST_DEADLINE") or 120),
        "CRAWL_MAX_RETRIES": int(env("CRAWL_MAX_RETRIES") or 4),
        "CRAWL_BACKOFF": float(env("CRAWL_BACKOFF") or 1),
        "CRAWL_MIN_INTERVAL": float(env("CRAWL_MIN_INTERVAL") or 1),
    }


def _alert_config(env: Any) -> dict[str, Any]:
    """Digests, outbox delivery and the scheduler (cron expressions: 5 fields, or 6 with seconds first)."""
    return {
        "DIGEST_TIME": env("DIGEST_TIME") or "07:00",
        "DIGEST_TIMEZONE": env("DIGEST_TIMEZONE") or "America/New_York",
        "DIGEST_WEEKDAY": (env("DIGEST_WEEKDAY") or "mon").strip().lower()[:3],
        "MAIL_UNSUBSCRIBE_ADDRESS": env("MAIL_UNSUBSCRIBE_ADDRESS") or None,
        "OUTBOX_MAX_ATTEMPTS": int(env("OUTBOX_MAX_ATTEMPTS") or 10),
        "OUTBOX_RETRY_BASE_SECONDS": float(env("OUTBOX_RETRY_BASE_SECONDS") or 60),
        "OUTBOX_RETRY_MAX_SECONDS": float(env("OUTBOX_RETRY_MAX_SECONDS") or 6 * 3600),
        "OUTBOX_SENDING_LEASE_SECONDS": float(env("OUTBOX_SENDING_LEASE_SECONDS") or 900),
        "SCHEDULER_TIMEZONE": env("SCHEDULER_TIMEZONE") or "UTC",
        "SCHEDULER_CRAWL_CRON": env("SCHEDULER_CRAWL_CRON") or "5 * * * *",
        "SCHEDULER_CRAWL_SINCE_DAYS": int(env("SCHEDULER_CRAWL_SINCE_DAYS") or 3),
        "SCHEDULER_RECONCILE_CRON": env("SCHEDULER_RECONCILE_CRON") or "30 2 * * *",
        "SCHEDULER_REINDEX_CRON": env("SCHEDULER_REINDEX_CRON") or "15 4 * * *",
        "SCHEDULER_OUTBOX_CRON": env("SCHEDULER_OUTBOX_CRON") or "*/5 * * * *",
        "SCHEDULER_JOBS": [j.strip() for j in (env("SCHEDULER_JOBS") or "").split(",") if j.strip()],
        "SCHEDULER_LOCK_TTL_SECONDS": float(env("SCHEDULER_LOCK_TTL_SECONDS") or 300),
        "SCHEDULER_MISFIRE_GRACE_SECONDS": int(env("SCHEDULER_MISFIRE_GRACE_SECONDS") or 900),
        "SCHEDULER_RETRIES": int(env("SCHEDULER_RETRIES") or 2),
        "SCHEDULER_RETRY_SECONDS": float(env("SCHEDULER_RETRY_SECONDS") or 60),
    }
