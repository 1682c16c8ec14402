"""Chat: messages, moderators, bans and timeouts, the moderation log, room modes.

Rooms are named by channel key (the channel name in lower case), not by a foreign key to
``channels``: static channels (``--stream-key``) have chat rooms but no row there.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from strom.store.models import UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_chat_messages_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
        **MYSQL,
    )
    op.create_index("ix_chat_messages_channel_id", "chat_messages", ["channel", "id"])
    op.create_index(op.f("ix_chat_messages_user_id"), "chat_messages", ["user_id"])
    op.create_table(
        "chat_moderators",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_chat_moderators_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel", "user_id", name=op.f("pk_chat_moderators")),
        **MYSQL,
    )
    op.create_index(op.f("ix_chat_moderators_user_id"), "chat_moderators", ["user_id"])
    op.create_table(
        "chat_bans",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("target", sa.String(40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("target_name", sa.String(32), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(200), server_default="", nullable=False),
        sa.Column("by", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_chat_bans_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel", "target", name=op.f("pk_chat_bans")),
        **MYSQL,
    )
    op.create_index(op.f("ix_chat_bans_user_id"), "chat_bans", ["user_id"])
    op.create_table(
        "chat_moderation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(32), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("target", sa.String(32), nullable=True),
        sa.Column("detail", sa.String(200), server_default="", nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_moderation_log")),
        **MYSQL,
    )
    op.create_index("ix_chat_moderation_log_channel_id", "chat_moderation_log", ["channel", "id"])
    op.create_table(
        "chat_settings",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("slow_mode_seconds", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("followers_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "followers_min_minutes", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("blocked_words", sa.Text(), nullable=False),
        sa.Column("block_links", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_chat_settings")),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("chat_settings")
    op.drop_table("chat_moderation_log")
    op.drop_table("chat_bans")
    op.drop_table("chat_moderators")
    op.drop_table("chat_messages")
