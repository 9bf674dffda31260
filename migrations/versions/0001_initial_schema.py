"""Initial schema: containers and the agent bindings (agent_containers).

Revision ID: 0001
Revises:
Create Date: 2026-01-01 00:00:00+00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Types are the plain SQLAlchemy ones behind the models' TypeDecorators: UtcDateTime is
    # DateTime(timezone=True), ContainerStatusType is String(16) (its values: the CHECK below).
    op.create_table(
        "containers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("openai_id", sa.String(length=64), nullable=True),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("memory_limit", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "expires_after",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('CREATING', 'RUNNING', 'EXPIRED', 'DELETED', 'FAILED')",
            name=op.f("ck_containers_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_containers")),
        sa.UniqueConstraint("openai_id", name=op.f("uq_containers_openai_id")),
    )
    op.create_index(
        "ix_containers_tenant_id_created_at_id",
        "containers",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_containers_tenant_id_name_live",
        "containers",
        ["tenant_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_containers_tenant_id_request_id",
        "containers",
        ["tenant_id", "request_id"],
        unique=True,
        sqlite_where=sa.text("request_id IS NOT NULL"),
        postgresql_where=sa.text("request_id IS NOT NULL"),
    )
    op.create_index(
        "ix_containers_tenant_id_status", "containers", ["tenant_id", "status"], unique=False
    )
    op.create_table(
        "agent_containers",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("agent_key", sa.String(length=64), nullable=False),
        sa.Column("container_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["containers.id"],
            name=op.f("fk_agent_containers_container_id_containers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "agent_key", name=op.f("pk_agent_containers")),
    )
    op.create_index(
        op.f("ix_agent_containers_container_id"), "agent_containers", ["container_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_containers_container_id"), table_name="agent_containers")
    op.drop_table("agent_containers")
    op.drop_index("ix_containers_tenant_id_status", table_name="containers")
    op.drop_index(
        "ix_containers_tenant_id_request_id",
        table_name="containers",
        sqlite_where=sa.text("request_id IS NOT NULL"),
        postgresql_where=sa.text("request_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_containers_tenant_id_name_live",
        table_name="containers",
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_containers_tenant_id_created_at_id", table_name="containers")
    op.drop_table("containers")
