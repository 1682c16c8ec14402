"""What a username may be: the rules every door checks (sign-up, the CLI, open rooms),
kept apart from the store so that the command line reads them without loading it."""

from __future__ import annotations

import re

USERNAME_MIN = 3
USERNAME_MAX = 25

USERNAME_RE = re.compile(rf"[A-Za-z0-9_]{{{USERNAME_MIN},{USERNAME_MAX}}}", re.ASCII)

# A channel lives at /{username}: names that are, or may become, the site's own paths.
RESERVED_USERNAMES = frozenset(
    {
        "about", "account", "admin", "api", "app", "assets", "auth", "avatars", "browse",
        "categories",
        "category", "channel", "channels", "chat", "dashboard", "directory", "embed",
        "favicon", "following", "help", "hls", "home", "live", "login", "logout", "me",
        "metrics", "moderator", "null", "oauth", "popout", "privacy", "register", "root",
        "search", "settings", "signup", "static", "status", "strom", "support", "system",
        "terms", "thumbnails", "undefined", "user", "users", "videos", "vod", "ws", "www",
    }
)  # fmt: skip


def looks_like_username(username: str) -> bool:
    return isinstance(username, str) and USERNAME_RE.fullmatch(username) is not None
