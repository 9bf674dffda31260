"""Create options: the initial file ids, the network policy (secret names only) and the skills.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 00:00:00+00:00

Additive: rows written before it read as no files, network disabled and no skills, and the
previous release keeps working on the new schema (it never names these columns).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # ADD COLUMN with a constant default needs no table rebuild, on SQLite either.
    op.add_column(
        "containers",
        sa.Column(
            "initial_file_ids", JSON_DOCUMENT, server_default=sa.text("'[]'"), nullable=False
        ),
    )
    op.add_column(
        "containers",
        sa.Column("network_policy", JSON_DOCUMENT, server_default=sa.text("'{}'"), nullable=False),
    )
    op.add_column(
        "containers",
        sa.Column("skills", JSON_DOCUMENT, server_default=sa.text("'[]'"), nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("containers") as containers:
        containers.drop_column("skills")
        containers.drop_column("network_policy")
        containers.drop_column("initial_file_ids")
