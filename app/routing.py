"""URL converters: an id in a path is a row id, so it is bounded like one.

Werkzeug's ``int`` accepts any number of digits; ``/opportunities/9223372036854775808`` then reached
the database and failed there (SQLite cannot bind it, PostgreSQL's INTEGER refuses it): a 500.
Bounded to the id columns' range, such a path matches no route and is an ordinary 404.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

#: The largest value of the INTEGER primary keys every table uses.
MAX_ID = 2**31 - 1


class RowId(IntegerConverter):
    """``<int:…>`` limited to 0 … ``MAX_ID``."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Must run before any blueprint is registered (rules pick their converter when added).

    ``<anyint:…>`` keeps Werkzeug's unbounded integer for a view that checks the range itself and
    says which parameter is wrong (the API's problem documents name the field).
    """
    app.url_map.converters["int"] = RowId
    app.url_map.converters["anyint"] = IntegerConverter
