"""Profiles: a user's display name, bio, links and avatar (``profiles``, one row per user
who wrote one).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from strom.store.models import AVATAR_ETAG_MAX, DISPLAY_NAME_MAX, UTCDateTime

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
#: base64 text (models._Picture): MEDIUMTEXT on MySQL, whose TEXT stops at 64 KiB
_PICTURE = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(DISPLAY_NAME_MAX), server_default="", nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        sa.Column("links", sa.Text(), nullable=False),
        sa.Column("avatar_large", _PICTURE, nullable=True),
        sa.Column("avatar_small", _PICTURE, nullable=True),
        sa.Column("avatar_etag", sa.String(AVATAR_ETAG_MAX), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_profiles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_profiles")),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("profiles")
