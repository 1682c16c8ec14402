"""The internal pull's credential: a key derived from the site secret.

Every node of a site shares ``--secret-key``, so every node can derive the same key
without it ever travelling: HMAC-SHA256(secret, "strom internal pull v1"). A puller
sends it as ``Authorization: Bearer <key>``; the upstream compares it in constant time.
A viewer, who does not know the secret, cannot use the pull route.
"""

from __future__ import annotations

import hashlib
import hmac

#: what the key is for, and its version (a new scheme gets a new context, not the old key)
_CONTEXT = b"strom internal pull v1"
AUTHORIZATION = "Authorization"
_SCHEME = "Bearer "


def pull_key(secret: bytes) -> str:
    return hmac.new(secret, _CONTEXT, hashlib.sha256).hexdigest()


def authorization(secret: bytes) -> dict[str, str]:
    """The header a puller sends."""
    return {AUTHORIZATION: _SCHEME + pull_key(secret)}


def authorized(secret: bytes, header: str | None) -> bool:
    """Whether ``header`` (an ``Authorization`` value, or None) carries this site's pull
    key; compared in constant time."""
    presented = header[len(_SCHEME) :] if header and header.startswith(_SCHEME) else ""
    return hmac.compare_digest(presented.encode(), pull_key(secret).encode())
