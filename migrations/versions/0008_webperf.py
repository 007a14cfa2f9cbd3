"""Web performance: the catalogue version (one row bumped with every catalogue change, for cheap
conditional API requests) and ``opportunities.number_key`` (normalized number, indexed, for exact
number lookups without a scan).

Revision ID: 0008_webperf
Revises: 0002
Create Date: 2026-11-21 10:00:00
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0008_webperf"
down_revision: str | None = "0007_admin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(number: str | None) -> str | None:
    """Same rule as app.models.opportunity.number_key (copied: migrations must not change later)."""
    if number is None:
        return None
    key = number.strip().strip('"').strip().upper()
    return key or None


def upgrade() -> None:
    state = op.create_table(
        "catalogue_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_state")),
    )
    op.bulk_insert(state, [{"id": 1, "version": 1, "changed_at": dt.datetime.now(dt.UTC)}])
    with op.batch_alter_table("opportunities") as batch_op:
        batch_op.add_column(sa.Column("number_key", sa.String(length=200), nullable=True))
    connection = op.get_bind()
    opportunities = sa.table(
        "opportunities", sa.column("id", sa.Integer()), sa.column("number", sa.String()),
        sa.column("number_key", sa.String()),
    )  # fmt: skip
    rows = connection.execute(
        sa.select(opportunities.c.id, opportunities.c.number).where(opportunities.c.number.is_not(None))
    ).all()
    updates = [{"b_id": opp_id, "b_key": _key(number)} for opp_id, number in rows]
    statement = (
        opportunities.update()
        .where(opportunities.c.id == sa.bindparam("b_id"))
        .values(number_key=sa.bindparam("b_key"))
    )
    for start in range(0, len(updates), 5000):
        connection.execute(statement, updates[start : start + 5000])
    op.create_index(op.f("ix_opportunities_number_key"), "opportunities", ["number_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_opportunities_number_key"), table_name="opportunities")
    with op.batch_alter_table("opportunities") as batch_op:
        batch_op.drop_column("number_key")
    op.drop_table("catalogue_state")
