"""Notifications that leave the site: go-live webhooks (signed JSON POSTs)."""

from strom.notify.webhooks import (
    WebhookLimits,
    WebhookSender,
    is_public_address,
    live_body,
    sign,
    verify,
)

__all__ = ["WebhookLimits", "WebhookSender", "is_public_address", "live_body", "sign", "verify"]
