"""Security headers on every response, and the proxy set-up they depend on.

A small ``after_request`` rather than flask-talisman: talisman sends HSTS whenever a request carries
``X-Forwarded-Proto: https`` (anyone can send that header) and in debug mode, and it rewrites the
session cookie settings; here the scheme comes from the WSGI environment, which trusts forwarded
headers only through Werkzeug's ProxyFix when ``TRUSTED_PROXIES`` says how many proxies there are.

The Content-Security-Policy allows scripts and styles from this origin only, plus inline ``<style>``
or ``<script>`` blocks that carry the per-response nonce (``csp_nonce()`` in templates). Nothing on
the site may be framed (clickjacking); the widget is a script partners load, not a frame, so it
needs no exception.
"""

from __future__ import annotations

import secrets

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

REFERRER_POLICY = "strict-origin-when-cross-origin"


def csp_nonce() -> str:
    """This response's nonce, made on first use (templates call it for inline style blocks)."""
    nonce: str | None = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def content_security_policy(nonce: str) -> str:
    source = f"'self' 'nonce-{nonce}'"
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {source}",
            f"style-src {source}",
            "img-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _signed_in() -> bool:
    """Whether this request loaded a signed-in user (without loading one just to find out)."""
    user = g.get("_login_user")
    return bool(user is not None and getattr(user, "is_authenticated", False))


def secure(response: Response, *, hsts_max_age: int) -> Response:
    """Add the headers; a view's own stricter policy (archived payloads: sandbox) is kept."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(csp_nonce()))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", REFERRER_POLICY)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure and hsts_max_age > 0:
        headers.setdefault("Strict-Transport-Security", f"max-age={hsts_max_age}; includeSubDomains")
    if _signed_in() and "Cache-Control" not in headers:
        # A page built for one signed-in person must not stay in a browser or proxy cache.
        headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        # Client address and scheme from the last ``proxies`` hops of X-Forwarded-For/-Proto only.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    hsts_max_age = int(app.config.get("HSTS_MAX_AGE") or 0)

    @app.after_request
    def _secure(response: Response) -> Response:
        return secure(response, hsts_max_age=hsts_max_age)
