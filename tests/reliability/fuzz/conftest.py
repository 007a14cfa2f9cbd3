"""Fixtures for the fuzz suite: the API suite's catalogue and keys, the site suite's CSRF reset.

Hypothesis runs many examples inside one test, so these fixtures are function-scoped on purpose:
state an example leaves (a deleted profile, a revoked key) is part of what the next one meets.
"""

from __future__ import annotations

from tests.admin.conftest import admin, objects
from tests.api.conftest import catalogue, make_key, roomy, store
from tests.site.conftest import _fresh_login_per_request

__all__ = ["_fresh_login_per_request", "admin", "catalogue", "make_key", "objects", "roomy", "store"]
