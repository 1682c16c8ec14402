"""Unlisted and private channels: ``channels.visibility`` (public, unlisted, private) and
``channels.watch_password_hash`` (the argon2id hash of the password that opens a private
channel to anyone who knows it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from strom.store.models import PASSWORD_HASH_MAX, VISIBILITY_MAX

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(
            sa.Column(
                "visibility",
                sa.String(VISIBILITY_MAX),
                server_default="public",
                nullable=False,
            )
        )
        batch.add_column(
            sa.Column("watch_password_hash", sa.String(PASSWORD_HASH_MAX), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("watch_password_hash")
        batch.drop_column("visibility")
