"""Site administration: categories' box art (``categories.art_version`` and the
``category_art`` table with the picture), why an administrator stopped a broadcast
(``broadcasts.stop_reason``) and a stream key an administrator made, kept until its
streamer has seen it (``channels.pending_stream_key``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from strom.store.models import (
    ART_VERSION_LENGTH,
    SECRET_KEY_MAX,
    STOP_REASON_MAX,
    UTCDateTime,
)

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("categories") as batch:
        batch.add_column(sa.Column("art_version", sa.String(ART_VERSION_LENGTH), nullable=True))
    op.create_table(
        "category_art",
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column(
            "image",
            sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_category_art_category_id_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("category_id", name=op.f("pk_category_art")),
    )
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("stop_reason", sa.String(STOP_REASON_MAX), nullable=True))
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("pending_stream_key", sa.String(SECRET_KEY_MAX), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("pending_stream_key")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("stop_reason")
    op.drop_table("category_art")
    with op.batch_alter_table("categories") as batch:
        batch.drop_column("art_version")
