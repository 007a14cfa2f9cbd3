"""Security tests reuse the admin fixtures (a signed-in admin, one of each admin object) and the site's."""

from __future__ import annotations

from tests.admin.conftest import admin, admin_client, objects
from tests.site.conftest import _fresh_login_per_request, catalogue, mailbox

__all__ = ["_fresh_login_per_request", "admin", "admin_client", "catalogue", "mailbox", "objects"]
