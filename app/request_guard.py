"""Refuse NUL characters in what the site's forms and links send, before any view reads them.

No browser form or link of the site sends U+0000, and PostgreSQL cannot store or compare it: a NUL
in a search box, a tag list or a path segment failed the query deep in a view (a 500). Refusing it
here gives one clear 400 and keeps SQLite and PostgreSQL alike. The API has its own check, which
names the field in a problem document (``app.api.operations``), so it is left to that.
"""

from __future__ import annotations

from flask import Flask, abort, request


def _refuse_nul() -> None:
    if request.path.startswith("/api/"):
        return
    view_args = request.view_args or {}
    fields = [
        *request.args.items(multi=True),
        *(request.form.items(multi=True) if request.method == "POST" else ()),
        *((name, value) for name, value in view_args.items() if isinstance(value, str)),
    ]
    for name, value in fields:
        if "\x00" in name or "\x00" in value:
            shown = name.replace("\x00", "")[:60] or "a field"
            abort(
                400,
                description=f"“{shown}” contains a NUL character, which no form sends; remove it and retry.",
            )


def init_app(app: Flask) -> None:
    app.before_request(_refuse_nul)
