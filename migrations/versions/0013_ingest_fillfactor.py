"""Ingest: ``opportunities`` keeps half of each PostgreSQL page free (fillfactor 50).

Every extract load moves ``last_seen`` of every record it sees (~43,000 rows a night). On full
pages each such update writes the row to another page and a new entry into each of the table's 14
indexes (~2.2 s of server time per load, and the table doubled in size each night until vacuumed);
with room on the page PostgreSQL updates in place (a heap-only tuple: no index entries), 0.35 s,
and the heap stays the same size. Only new pages follow the setting. SQLite has no such knob.

Revision ID: 0013_ingest_fillfactor
Revises: 0012_cvi_evidence
Create Date: 2026-12-05 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_ingest_fillfactor"
down_revision: str | None = "0012_cvi_evidence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE opportunities SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE opportunities RESET (fillfactor)")
