"""Role checks for views: anonymous users go to sign-in, members get 403 on admin pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort
from flask_login import current_user, login_required

F = TypeVar("F", bound=Callable[..., Any])


def admin_required(view: F) -> F:
    """Allow only signed-in admins."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not getattr(current_user, "is_admin", False):
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def member_required(view: F) -> F:
    """Allow any signed-in user (member or admin)."""
    return cast(F, login_required(view))
