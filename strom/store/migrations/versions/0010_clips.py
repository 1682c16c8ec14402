"""Clips: a viewer's cut of a broadcast's recording (``clips``), its MP4 in the data dir.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from strom.store.models import CLIP_SLUG_LENGTH, RECORDING_ID_MAX, TITLE_MAX, UTCDateTime

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(CLIP_SLUG_LENGTH), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=True),
        sa.Column("creator_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(TITLE_MAX), server_default="", nullable=False),
        sa.Column("recording", sa.String(RECORDING_ID_MAX), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("bytes", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("views", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_clips_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcasts.id"],
            name=op.f("fk_clips_broadcast_id_broadcasts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["users.id"],
            name=op.f("fk_clips_creator_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clips")),
        sa.UniqueConstraint("slug", name=op.f("uq_clips_slug")),
        **MYSQL,
    )
    op.create_index("ix_clips_channel_id_created_at", "clips", ["channel_id", "created_at"])
    op.create_index(op.f("ix_clips_broadcast_id"), "clips", ["broadcast_id"])
    op.create_index(op.f("ix_clips_creator_id"), "clips", ["creator_id"])


def downgrade() -> None:
    op.drop_table("clips")
