"""Profile vectors: each program profile keeps the embedding of its query text and the key (model and
text hash) it was made from, so a digest run ranking hundreds of profiles embeds only the profiles
changed since the last run or the nightly re-index.

Revision ID: 0011_profile_vectors
Revises: 0010_security
Create Date: 2026-12-05 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_profile_vectors"
down_revision: str | None = "0010_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("program_profiles") as batch:
        batch.add_column(sa.Column("query_vector", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("query_vector_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("program_profiles") as batch:
        batch.drop_column("query_vector_key")
        batch.drop_column("query_vector")
