"""Flask extensions, created here and bound to the app in ``init_app`` (the factory calls it)."""

from __future__ import annotations

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    csrf.init_app(app)

    @login_manager.user_loader
    def _load_user(user_id: str) -> object | None:
        from app.sign_in import load

        return load(user_id)
