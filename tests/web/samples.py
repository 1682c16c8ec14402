"""Sample page contexts, shaped like the app's render() contract, for the template tests
and the page screenshots. Hostile strings sit where users control text."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from strom.record.storage import DiskReport
from strom.store.security import PASSWORD_MIN

TEMPLATES = Path(__file__).resolve().parents[2] / "strom" / "web" / "templates"

XSS_TITLE = "<script>alert(1)</script>"
XSS_TEXT = '"><img src=x onerror=alert(1)>'
CSRF = "csrf-Tok3n_sample"
# Whole seconds of the real clock, so uptimes in the screenshots look like uptimes.
NOW = float(int(time.time()))
RTMP_URL = "rtmp://example.com:1935/live"
HTTP_BASE = "http://example.com:8080"


def environment() -> jinja2.Environment:
    """The same options as strom/web/app.py."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class SampleSession:
    logged_in: bool = False
    username: str | None = None
    is_admin: bool = False


ANONYMOUS = SampleSession()
ALICE = SampleSession(logged_in=True, username="alice", is_admin=True)
BOB = SampleSession(logged_in=True, username="bob_builds")
HOSTILE_USER = SampleSession(logged_in=True, username=XSS_TEXT)


def common(
    session: SampleSession = ANONYMOUS, request_path: str = "/", **context: Any
) -> dict[str, Any]:
    return {
        "version": "0.1.0",
        "password_min": PASSWORD_MIN,
        "session": session,
        "csrf_token": CSRF,
        "request_path": request_path,
        **context,
    }


def stream(
    username: str,
    title: str,
    viewers: int,
    *,
    category: dict[str, str] | None = None,
    minutes: float = 30.0,
    thumbnail: bool = True,
) -> dict[str, Any]:
    return {
        "username": username,
        "title": title,
        "category": category,
        "viewers": viewers,
        "started_at": NOW - minutes * 60,
        "thumbnail_url": f"/thumbs/{username}.svg" if thumbnail else None,
        "width": 1920,
        "height": 1080,
    }


CHESS = {"slug": "chess", "name": "Chess"}
JUST_CHATTING = {"slug": "just-chatting", "name": "Just Chatting"}
HOSTILE_CATEGORY = {"slug": "x", "name": XSS_TEXT}

STREAMS = [
    stream("alice", "Speedrunning the whole back catalogue, no breaks", 1234, category=CHESS),
    stream("bob_builds", XSS_TITLE, 57, category=HOSTILE_CATEGORY, minutes=200),
    stream(XSS_TEXT, "Late night talk about everything", 1, category=JUST_CHATTING, minutes=3),
    stream("quiet_carol", "", 0, thumbnail=False, minutes=0.5),
]

CATEGORIES = [
    {"slug": "just-chatting", "name": "Just Chatting", "live_count": 1, "is_game": False},
    {
        "slug": "chess",
        "name": "Chess",
        "live_count": 1,
        "is_game": True,
        "art_url": "/thumbs/chess.svg",
    },
    {"slug": "x", "name": XSS_TEXT, "live_count": 1, "is_game": True},
    {"slug": "minecraft", "name": "Minecraft", "live_count": 0, "is_game": True},
    {"slug": "music", "name": "Music", "live_count": 0, "is_game": False},
    {"slug": "art", "name": "Art", "live_count": 0, "is_game": False},
    {
        "slug": "software-and-game-development",
        "name": "Software and Game Development",
        "live_count": 0,
        "is_game": False,
    },
]


def directory(**overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "streams": STREAMS,
        "categories": CATEGORIES,
        "sort": "viewers",
        "category": None,
        "q": None,
        "rtmp_url": RTMP_URL,
        "http_base": HTTP_BASE,
    }
    context.update(overrides)
    return context


def channel(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "username": "alice",
        "title": XSS_TITLE,
        "description": f"Line one\nLine two {XSS_TEXT}\n\nSchedule: weekdays 8 pm",
        "category": CHESS,
        "live": True,
        "viewers": 1234,
        "started_at": NOW - 5000,
        "last_broadcast": None,
        "follower_count": 42,
    }
    value.update(overrides)
    return value


#: the channel page's past broadcasts (pages.past_broadcasts), newest first
RECORDINGS: list[dict[str, Any]] = [
    {
        "id": "20261123-180000",
        "title": XSS_TEXT,
        "started": NOW - 3600,
        "duration": 3725.5,
        "date": "2026-11-23 18:00 UTC",
        "length": "1:02:05",
        "peak_viewers": 1,
        "facts": "2026-11-23 18:00 UTC · 1:02:05 · 1 peak viewer",
        "playlist_url": "/vod/alice/20261123-180000/index.m3u8",
        "mp4_url": "/vod/alice/20261123-180000.mp4",
        "thumbnail_url": "/vod/alice/20261123-180000/thumbnail.jpg",
    },
    {
        "id": "20261122-090000-2",
        "title": XSS_TITLE,
        "started": NOW - 90000,
        "duration": 65.0,
        "date": "2026-11-22 09:00 UTC",
        "length": "1:05",
        "peak_viewers": None,
        "facts": "2026-11-22 09:00 UTC · 1:05",
        "playlist_url": "/vod/alice/20261122-090000-2/index.m3u8",
        "mp4_url": "/vod/alice/20261122-090000-2.mp4",
        "thumbnail_url": None,
    },
]

#: a profile as profiles.profile_view() gives it (hostile text in every field)
PROFILE: dict[str, Any] = {
    "display_name": XSS_TITLE,
    "bio": f"Speedruns.\n{XSS_TEXT}",
    "links": [{"url": "https://example.com/a?b=<c>", "label": "example.com/a"}],
    "avatar_url": "/avatars/alice/256.jpg?v=0123456789abcdef",
    "avatar_small_url": "/avatars/alice/64.jpg?v=0123456789abcdef",
    "last_online": NOW - 7200,
}

#: offline channels a search found (profiles.search_channels)
OFFLINE_MATCHES: list[dict[str, Any]] = [
    {
        "username": "alice_too", "display_name": XSS_TITLE, "title": XSS_TEXT, "live": False,
        "viewers": 0, "category": None, "avatar_url": None, "last_online": NOW - 86400,
    },
    {
        "username": "malice", "display_name": "", "title": "", "live": False, "viewers": 0,
        "category": None, "avatar_url": "/avatars/malice/64.jpg?v=00ff", "last_online": None,
    },
]  # fmt: skip

OFFLINE_CHANNEL = channel(
    live=False,
    viewers=0,
    started_at=None,
    last_broadcast={"started_at": NOW - 20000, "ended_at": NOW - 10800},
)

TOKENS = [
    {"id": 7, "name": XSS_TEXT, "created_at": NOW - 86400 * 3, "last_used_at": NOW - 600},
    {"id": 8, "name": "laptop", "created_at": NOW - 3600, "last_used_at": None},
]

SESSIONS = [
    {
        "id": 3, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        "address": "192.0.2.7", "created_at": NOW - 86400, "last_seen_at": NOW - 60,
        "current": True,
    },
    {
        "id": 4, "user_agent": XSS_TEXT, "address": "2001:db8::1",
        "created_at": NOW - 86400 * 9, "last_seen_at": NOW - 86400 * 2, "current": False,
    },
]  # fmt: skip

NEW_KEY = "live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
NEW_TOKEN = "strom_tok_0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def dashboard(**overrides: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "channel": channel(live=False, title="Chess openings", started_at=None, viewers=0),
        "categories": [{"slug": c["slug"], "name": c["name"]} for c in CATEGORIES],
        "new_stream_key": None,
        "rtmp_url": RTMP_URL,
        "obs": {"server": RTMP_URL, "key_hint": "the key shown once when you created it"},
        "whip_url": "https://example.com/whip",
        "ffmpeg_command": (
            "ffmpeg -re -i video.mp4 -c:v libx264 -preset veryfast -tune zerolatency -g 60"
            f" -c:a aac -f flv {RTMP_URL}/KEY"
        ),
        "tokens": TOKENS,
        "new_api_token": None,
        "record_broadcasts": True,
        "site_records": True,
        "sessions": SESSIONS,
        "notice": None,
        "account_error": None,
        "chat_urls": {
            "popout": "https://example.com/popout/alice/chat",
            "overlay": "https://example.com/overlay/alice/chat",
        },
    }
    context.update(overrides)
    return context


FOLLOWING_LIVE = [
    {**STREAMS[0], "live": True},
    {**STREAMS[1], "live": True},
]
FOLLOWING_OFFLINE = [
    {"username": "dave", "live": False, "title": "Chess club", "last_live_at": NOW - 86400 * 3},
    {"username": "erin", "live": False, "title": XSS_TITLE, "last_live_at": NOW - 600},
    {"username": "newcomer", "live": False, "title": "", "last_live_at": None},
]

ADMIN_STREAMS = [
    {
        "username": s["username"],
        "title": s["title"],
        "viewers": s["viewers"],
        "started_at": s["started_at"],
        "bitrate_kbps": 4500.4 if i else None,
        "width": 1920 if i else None,
        "height": 1080 if i else None,
    }
    for i, s in enumerate(STREAMS)
]

ADMIN_USERS = [
    {"username": "alice", "is_admin": True, "suspended": False, "created": "2026-01-02",
     "last_online": "2026-12-07 10:00", "live": True},
    {"username": "bob_builds", "is_admin": False, "suspended": True, "created": "2026-03-04",
     "last_online": None, "live": False},
    {"username": XSS_TEXT, "is_admin": False, "suspended": False, "created": "2026-05-06",
     "last_online": "2026-12-01 08:30", "live": False},
]  # fmt: skip


# name → (template, context): every page the site renders, in the states worth a look.
PAGES: dict[str, tuple[str, dict[str, Any]]] = {
    "directory": ("directory.html", common(ALICE, "/", **directory())),
    "directory-by-category": (
        "directory.html",
        common(ANONYMOUS, "/", **directory(sort="category")),
    ),
    "directory-empty": (
        "directory.html",
        common(ANONYMOUS, "/", **directory(streams=[], categories=[])),
    ),
    "category-page": (
        "directory.html",
        common(ANONYMOUS, "/categories/chess", **directory(streams=STREAMS[:1], category=CHESS)),
    ),
    "category-page-empty": (
        "directory.html",
        common(ANONYMOUS, "/categories/music", **directory(streams=[], category=HOSTILE_CATEGORY)),
    ),
    "search": (
        "directory.html",
        common(ANONYMOUS, "/search", **directory(q="alice", offline_matches=OFFLINE_MATCHES)),
    ),
    "search-no-results": (
        "directory.html",
        common(HOSTILE_USER, "/search", **directory(streams=[], q=XSS_TEXT)),
    ),
    "categories": ("categories.html", common(ANONYMOUS, "/categories", categories=CATEGORIES)),
    "channel-live": ("channel.html", common(ANONYMOUS, "/alice", channel=channel())),
    "channel-offline": (
        "channel.html",
        common(ALICE, "/alice", channel=OFFLINE_CHANNEL, recordings=RECORDINGS, profile=PROFILE),
    ),
    "channel-following": (
        "channel.html",
        common(BOB, "/alice", channel=channel(), following=True),
    ),
    "channel-not-following": (
        "channel.html",
        common(HOSTILE_USER, "/alice", channel=OFFLINE_CHANNEL, following=False),
    ),
    "clip": (
        "clip.html",
        common(
            BOB,
            "/clip/AbCdEfGhIjKlMnOp",
            clip={
                "slug": "AbCdEfGhIjKlMnOp",
                "channel": "alice",
                "creator": XSS_TEXT,
                "title": XSS_TITLE,
                "duration": 31.5,
                "views": 7,
                "url": f"{HTTP_BASE}/clip/AbCdEfGhIjKlMnOp",
                "mp4_url": f"{HTTP_BASE}/clips/AbCdEfGhIjKlMnOp.mp4",
            },
            clip_length="0:31",
            can_rename=True,
            can_delete=True,
        ),
    ),
    "profile-settings": (
        "profile.html",
        common(
            ALICE,
            "/settings/profile",
            profile=PROFILE,
            error=XSS_TEXT,
            notice=None,
            form={"display_name": XSS_TITLE, "bio": XSS_TEXT, "links": XSS_TEXT},
            avatar_api="/api/v1/me/avatar",
            avatar_max_mib=2,
        ),
    ),
    "following": (
        "following.html",
        common(BOB, "/following", live=FOLLOWING_LIVE, offline=FOLLOWING_OFFLINE),
    ),
    "following-empty": ("following.html", common(BOB, "/following", live=[], offline=[])),
    "dashboard": ("dashboard.html", common(ALICE, "/dashboard", **dashboard())),
    "dashboard-new-secrets": (
        "dashboard.html",
        common(ALICE, "/dashboard", **dashboard(new_stream_key=NEW_KEY, new_api_token=NEW_TOKEN)),
    ),
    "dashboard-stopped-by-admin": (
        "dashboard.html",
        common(
            ALICE,
            "/dashboard",
            **dashboard(new_stream_key=NEW_KEY, key_by_admin=True),
            stopped=f"Stopped by an administrator: {XSS_TEXT}",
        ),
    ),
    "popout": (
        "popout.html",
        common(ANONYMOUS, "/popout/alice/chat", channel="alice", logged_in=False),
    ),
    "overlay": ("overlay.html", common(ANONYMOUS, "/overlay/alice/chat", channel="alice", fade=30)),
    "login": (
        "login.html",
        common(
            ANONYMOUS,
            "/login",
            error="Wrong username or password",
            username=XSS_TEXT,
            next=XSS_TEXT,
        ),
    ),
    "register": (
        "register.html",
        common(ANONYMOUS, "/register", error=XSS_TITLE, username="new_user"),
    ),
    "admin": (
        "admin.html",
        common(
            ALICE,
            "/admin",
            streams=ADMIN_STREAMS,
            disk=DiskReport(
                [("bob_builds", 3, 3_400_000_000), (XSS_TEXT, 1, 2_000)],
                3_400_002_000,
                50_000_000_000,
                250_000_000_000,
            ),
            recordings={
                "enabled": True,
                "active": [{"channel": "bob_builds", "id": "20261123-120000", "bytes": 1}],
                "failed": [
                    {"channel": XSS_TEXT, "id": "20261122-100000", "error": "disk full", "at": NOW}
                ],
                "disk_bytes": 3_400_002_000,
            },
            retention={"days": 30.0, "gb": 0.0},
        ),
    ),
    "admin-empty": ("admin.html", common(ALICE, "/admin", streams=[])),
    "admin-users": (
        "admin_users.html",
        common(
            ALICE,
            "/admin/users",
            me="alice",
            users=ADMIN_USERS,
            q="",
            total=120,
            page=2,
            pages=3,
            prev_url="/admin/users?page=1",
            next_url="/admin/users?page=3",
            notice="bob_builds is suspended.",
            password={"username": "bob_builds", "password": "Tmp-pa55word-xyz"},
        ),
    ),
    "admin-categories": (
        "admin_categories.html",
        common(
            ALICE,
            "/admin/categories",
            name_max=64,
            error=XSS_TEXT,
            categories=[
                {**c, "art_url": "/thumbs/chess.svg" if i == 1 else None}
                for i, c in enumerate(CATEGORIES)
            ],
        ),
    ),
    "error-404": (
        "error.html",
        common(HOSTILE_USER, "/nope", status=404, message=f"No channel named {XSS_TEXT}"),
    ),
    "error-403": (
        "error.html",
        common(ANONYMOUS, "/admin", status=403, message="Only administrators can see this page."),
    ),
    "watch": ("watch.html", common(ANONYMOUS, "/live/alice", channel="alice")),
    "private-password": (
        "private.html",
        common(
            ANONYMOUS,
            "/live/alice",
            channel="alice",
            ask_password=True,
            error=XSS_TEXT,
            next="/live/alice",
        ),
    ),
    "private-followers": (
        "private.html",
        common(HOSTILE_USER, "/alice", channel="alice", ask_password=False, next="/alice"),
    ),
    "embed": ("embed.html", common(ANONYMOUS, "/embed/alice", channel=XSS_TEXT)),
    "embed-chat": (
        "embed.html",
        common(ANONYMOUS, "/embed/alice", channel=XSS_TEXT, chat=True, logged_in=False),
    ),
    "golive": (
        "golive.html",
        common(ALICE, "/golive", channel=channel(title=XSS_TITLE), reconnect_grace=30.0),
    ),
    "download": (
        "download.html",
        common(
            ANONYMOUS,
            "/download",
            site=f"http://example.com{XSS_TEXT}",  # the Host header is the visitor's to choose
            rtmp_url="rtmp://example.com:1935/live",
            rtmps_url=None,
            wheel_name="strom-0.1.0-py3-none-any.whl",
            wheel_url="http://example.com:8080/download/strom-0.1.0-py3-none-any.whl",
            logged_in=False,
        ),
    ),
    "download-logged-in": (
        "download.html",
        common(
            BOB,
            "/download",
            site="https://example.com",
            rtmp_url="rtmp://example.com:1935/live",
            rtmps_url="rtmps://example.com:1936/live",
            wheel_name="strom-0.1.0-py3-none-any.whl",
            wheel_url="https://example.com/download/strom-0.1.0-py3-none-any.whl",
            logged_in=True,
        ),
    ),
}
