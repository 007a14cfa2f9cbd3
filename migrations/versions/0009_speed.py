"""Speed: an index on ``opportunities (cvi_eligible, status, close_date)`` for the matcher's filter
query (CVI-eligible, open or forecasted, closing after a date), which otherwise reads every
CVI-eligible row.

Revision ID: 0009_speed
Revises: 0008_webperf
Create Date: 2026-11-21 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_speed"
down_revision: str | None = "0008_webperf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_opportunities_cvi_status_close", "opportunities", ["cvi_eligible", "status", "close_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_opportunities_cvi_status_close", table_name="opportunities")
