"""Broadcasts survive a crash: ``broadcasts.last_seen_at`` (the live node's heartbeat,
so a broadcast left open by a killed process ends when it was last on air, not when the
process came back) and ``broadcasts.node`` (which node runs it, so a node restarting
closes its own broadcasts and leaves other nodes' live ones alone).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from strom.store.models import NODE_ID_MAX, UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("last_seen_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("node", sa.String(NODE_ID_MAX), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("node")
        batch.drop_column("last_seen_at")
