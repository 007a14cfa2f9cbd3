"""Matching: ``opportunities.cvi_evidence``, the CVI classifier's evidence before its score is capped
at 1, so the ranker can tell listings that are CVI money from listings CVI work can also use. Empty
until the next ``flask reindex`` re-scores every opportunity (the ranker falls back to the score).

Revision ID: 0012_cvi_evidence
Revises: 0011_profile_vectors
Create Date: 2026-12-05 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_cvi_evidence"
down_revision: str | None = "0011_profile_vectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("opportunities") as batch_op:
        batch_op.add_column(sa.Column("cvi_evidence", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("opportunities") as batch_op:
        batch_op.drop_column("cvi_evidence")
