"""Every page template rendered with the app's context contract: hostile text stays text,
every POST form carries the CSRF token, no inline scripts, and the elements the page
scripts and the browser tests rely on are there."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.web import samples
from tests.web.samples import CSRF, NEW_KEY, NEW_TOKEN, PAGES, XSS_TEXT, XSS_TITLE

STATIC = samples.TEMPLATES.parent / "static"
EN_DASH = "\u2013"  # what the pages show for "no value yet", and in ranges
TIMES = "\u00d7"  # the multiplication sign in 1920x1080
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


# --- a small DOM, enough to ask questions of a page ------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    parent: Element | None = None
    children: list[Element | str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return self.attrs.get(name)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> list[Element]:
        found: list[Element] = []
        for child in self.children:
            if isinstance(child, Element):
                found.append(child)
                found.extend(child.iter())
        return found

    def find_all(self, tag: str | None = None, **attrs: str | None) -> list[Element]:
        """Elements by tag and attributes: ``data_role="x"`` matches data-role="x", ``x=None``
        any value of x, ``class_="a b"`` elements that have both classes."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [
            el
            for el in self.iter()
            if (tag is None or el.tag == tag)
            and all(el.matches(name, value) for name, value in wanted.items())
        ]

    def matches(self, name: str, value: str | None) -> bool:
        if name not in self.attrs:
            return False
        if value is None:
            return True
        if name == "class":
            return set(value.split()) <= set((self.attrs[name] or "").split())
        return self.attrs[name] == value

    def one(self, tag: str | None = None, **attrs: str | None) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def ancestors(self) -> list[Element]:
        chain, node = [], self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [name for name, _ in attrs]
        assert len(names) == len(set(names)), f"duplicate attribute in <{tag} {attrs}>"
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, dict(attrs), self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None, f"stray </{tag}>"
        assert node.parent is not None, f"stray </{tag}>"
        self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


@dataclass(frozen=True)
class Page:
    html: str
    dom: Element

    def body_text(self) -> str:
        return re.sub(r"\s+", " ", self.dom.one("body").text())


def render(template: str, context: dict[str, Any]) -> Page:
    html = samples.environment().get_template(template).render(**context)
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return Page(html, builder.root)


@functools.cache
def page(name: str) -> Page:
    template, context = PAGES[name]
    return render(template, context)


# --- every page ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAGES))
def test_hostile_text_is_rendered_as_text(name: str) -> None:
    result = page(name)
    # The tags in user data never become markup...
    assert "<script>alert" not in result.html
    assert "<img src=x" not in result.html
    for el in result.dom.iter():
        assert el.tag != "img" or "onerror" not in el.attrs
        # ...and no inline event handlers or javascript: URLs anywhere (CSP-friendly).
        assert not [a for a in el.attrs if a.startswith("on")], (el.tag, el.attrs)
        assert not (el.get("href") or "").lower().startswith("javascript:")
    # Where the hostile strings are shown, they read exactly as the user typed them.
    text = result.dom.text()
    _, context = PAGES[name]
    if context.get("q") == XSS_TEXT or context.get("message", "").endswith(XSS_TEXT):
        assert XSS_TEXT in text


@pytest.mark.parametrize("name", sorted(PAGES))
def test_scripts_are_external_modules(name: str) -> None:
    result = page(name)
    for script in result.dom.find_all("script"):
        assert script.get("src"), "inline script"
        assert script.get("type") == "module"
        assert script.text().strip() == ""
        src = script.get("src") or ""
        assert (STATIC / src.removeprefix("/static/")).is_file(), src
    assert result.dom.one("link", rel="stylesheet").get("href") == "/static/strom.css"
    assert not re.search(r"https?://(?!example\.com)", result.html), "external resource"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_post_form_carries_the_csrf_token(name: str) -> None:
    result = page(name)
    for form in result.dom.find_all("form"):
        if (form.get("method") or "get").lower() != "post":
            continue
        tokens = form.find_all("input", name="csrf_token")
        assert len(tokens) == 1, f"{form.get('action')}: no csrf_token field"
        assert tokens[0].get("type") == "hidden"
        assert tokens[0].get("value") == CSRF


#: pages without the site's layout (another site frames them)
BARE = {"embed", "embed-chat", "popout", "overlay"}  # no site header


@pytest.mark.parametrize("name", sorted(set(PAGES) - BARE))
def test_layout_header(name: str) -> None:
    _, context = PAGES[name]
    result = page(name)
    assert result.dom.one("meta", name="csrf-token").get("content") == CSRF
    header = result.dom.one("header")
    assert header.one("a", class_="brand").get("href") == "/"
    links = {a.get("href"): a.text().strip() for a in header.find_all("a")}
    assert links["/categories"] == "Categories"
    search = header.one("form", role="search")
    assert (search.get("action"), search.get("method")) == ("/search", "get")
    assert search.one("input", name="q")
    session = context["session"]
    if session.logged_in:
        assert "/dashboard" in links
        assert ("/admin" in links) == session.is_admin
        logout = header.one("form", action="/logout")
        assert logout.get("method") == "post"
        assert "Log in" not in links.values()
    else:
        assert any(href.startswith("/login") for href in links if href)
        assert links["/register"] == "Sign up"
        assert not header.find_all("form", action="/logout")


def test_the_embed_page_is_the_player_alone() -> None:
    result = page("embed")
    assert not result.dom.find_all("header")
    assert result.dom.one("div", id="player").get("data-channel") == XSS_TEXT
    link = result.dom.one("a", class_="embed-link")
    assert link.get("target") == "_blank"
    assert link.get("rel") == "noopener"
    assert not result.dom.find_all("aside")  # no chat unless asked for


def test_the_embed_page_with_chat_has_the_chat_panel_whose_links_leave_the_frame() -> None:
    result = page("embed-chat")
    chat = result.dom.one("aside", class_="chat")
    assert chat.get("data-channel") == XSS_TEXT
    assert chat.get("data-login-target") == "_blank"
    scripts = [s.get("src") for s in result.dom.find_all("script")]
    assert "/static/chat.js" in scripts


def test_logged_in_header_links_to_the_users_channel_escaped() -> None:
    result = page("search-no-results")  # logged in as a hostile username
    header = result.dom.one("header")
    profile = header.one("a", class_="account-name")
    assert profile.get("href") == "/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"
    assert XSS_TEXT in profile.text()


# --- directory -------------------------------------------------------------------------


def cards(result: Page) -> list[Element]:
    grid = result.dom.one("ul", data_role="streams")
    return [c for c in grid.children if isinstance(c, Element)]


def test_directory_cards() -> None:
    result = page("directory")
    shown = cards(result)
    assert [c.get("data-username") for c in shown] == [s["username"] for s in samples.STREAMS]
    alice, bob, hostile, quiet = shown
    assert alice.one(data_role="viewers").text() == "1,234"
    assert alice.one(data_role="viewers-label").text() == "viewers"
    assert alice.one(data_role="title").text() == samples.STREAMS[0]["title"]
    assert alice.one("a", data_role="category").get("href") == "/categories/chess"
    assert alice.one("img", data_role="thumbnail").get("src") == "/thumbs/alice.svg"
    assert alice.one(data_role="uptime").get("data-since") == str(samples.NOW - 1800)
    assert {a.get("href") for a in alice.find_all("a", data_link=None)} == {"/alice"}
    assert alice.find_all(class_="badge badge-live")
    # Hostile title, username and category name are text, in text and in attributes.
    assert bob.one(data_role="title").text() == XSS_TITLE
    assert bob.one("a", data_role="category").text() == XSS_TEXT
    assert hostile.get("data-username") == XSS_TEXT
    assert hostile.one(data_role="username").text() == XSS_TEXT
    assert hostile.one(data_role="viewers-label").text() == "viewer"
    # No thumbnail yet: a placeholder, no broken image.
    image = quiet.one("img", data_role="thumbnail")
    assert image.get("src") is None
    assert "hidden" in image.attrs
    assert "hidden" in quiet.one("a", data_role="category").attrs
    empty = result.dom.one(data_role="empty")
    assert "hidden" in empty.attrs


def test_directory_refresh_configuration_and_card_template() -> None:
    result = page("category-page")
    root = result.dom.one(data_directory=None)
    assert root.get("data-api") == "/api/v1/streams"
    assert (root.get("data-sort"), root.get("data-category"), root.get("data-q")) == (
        "viewers",
        "chess",
        "",
    )
    template = result.dom.one("template", id="stream-card-template")
    blank = template.one("li", class_="stream-card")
    for role in (
        "viewers",
        "viewers-label",
        "title",
        "username",
        "category",
        "thumbnail",
        "uptime",
        "avatar",
    ):
        assert blank.find_all(data_role=role), role
    assert result.dom.one("h1").text() == "Chess"
    chips = result.dom.one("nav", class_="chips")
    current = chips.one("a", aria_current="true")
    assert current.get("href") == "/categories/chess"
    assert not result.dom.find_all("nav", class_="segmented")  # one category: nothing to sort by


def test_directory_sort_links_keep_the_search() -> None:
    result = page("search")
    sort = result.dom.one("nav", class_="segmented")
    hrefs = {a.text(): a.get("href") for a in sort.find_all("a")}
    assert hrefs == {"Viewers": "?q=alice&sort=viewers", "Category": "?q=alice&sort=category"}
    assert sort.one("a", aria_current="true").text() == "Viewers"
    assert result.dom.one("meta", name="csrf-token")
    assert result.dom.one("header").one("input", name="q").get("value") == "alice"
    by_category = page("directory-by-category").dom.one("nav", class_="segmented")
    assert by_category.one("a", aria_current="true").text() == "Category"


def test_directory_empty_state_says_how_to_go_live() -> None:
    result = page("directory-empty")
    empty = result.dom.one(data_role="empty")
    assert "hidden" not in empty.attrs
    text = re.sub(r"\s+", " ", empty.text())
    assert "Nobody is live right now" in text
    assert samples.RTMP_URL in text
    assert f"-f flv {samples.RTMP_URL}/YOUR_KEY" in text
    assert f"{samples.HTTP_BASE}/YOUR_NAME" in text
    assert empty.find_all("a", href="/register")
    assert cards(result) == []


def test_search_without_results_and_empty_category() -> None:
    result = page("search-no-results")
    empty = result.dom.one(data_role="empty")
    assert f"No live channels match “{XSS_TEXT}”" in empty.text()
    assert result.dom.one("h1").text() == f"Results for “{XSS_TEXT}”"
    assert result.dom.one(data_directory=None).get("data-q") == XSS_TEXT
    category = page("category-page-empty").dom.one(data_role="empty")
    assert f"Nobody is streaming {XSS_TEXT} right now" in category.text()


def test_categories_page_links_every_category() -> None:
    result = page("categories")
    links = result.dom.one("ul", class_="category-grid").find_all("a")
    assert [a.get("href") for a in links] == [
        f"/categories/{c['slug']}" for c in samples.CATEGORIES
    ]
    assert XSS_TEXT in links[2].text()
    assert "1 live" in links[0].text()
    assert "Nobody live" in links[3].text()


# --- channel page ----------------------------------------------------------------------


def test_channel_page_live() -> None:
    result = page("channel-live")
    root = result.dom.one(data_channel_page=None)
    assert root.get("data-api") == "/api/v1/channels/alice"
    assert root.get("data-live") == "true"
    assert root.one(data_role="title").text() == XSS_TITLE
    assert root.one(data_role="viewers").text() == "1,234"
    assert root.one(data_role="uptime").get("data-since") == str(samples.NOW - 5000)
    category = root.one("a", data_role="category")
    assert (category.get("href"), category.text()) == ("/categories/chess", "Chess")
    # The description keeps its line breaks (CSS pre-wrap) and stays text.
    description = root.one(data_role="description").text()
    assert description == samples.channel()["description"]
    player = result.dom.one(id="player")
    assert player.get("data-channel") == "alice"
    assert player.get("data-ws-path") == "/live/alice/ws"
    assert player.get("data-hls-path") == "/live/alice/master.m3u8"
    assert "data-keys" not in player.attrs
    title = result.dom.one("title").text()
    assert title == f"alice {EN_DASH} {XSS_TITLE} · Strom"


def test_channel_page_offline_says_when_it_was_last_live() -> None:
    result = page("channel-offline")
    assert result.dom.one(data_channel_page=None).get("data-live") == "false"
    offline = result.dom.one(id="player").one(class_="card card-offline")
    last = offline.one(data_role="last-live")
    assert last.text().startswith("Last live ")
    assert last.one("time").get("data-ago") == str(samples.NOW - 10800)
    assert "alice is offline" in re.sub(r"\s+", " ", offline.text())


def test_channel_page_lists_past_broadcasts_as_text() -> None:
    result = page("channel-offline")
    section = result.dom.one(data_vod_list=None)
    assert section.get("data-recordings-api") == "/api/v1/channels/alice/recordings"
    links = section.find_all("a", class_="vod-link")
    assert [a.get("href") for a in links] == [
        "/alice?vod=20261123-180000",
        "/alice?vod=20261122-090000-2",
    ]
    assert [a.get("data-playlist") for a in links] == [
        r["playlist_url"] for r in samples.RECORDINGS
    ]
    # Hostile titles read as typed, and are no markup.
    assert [a.one(data_role="vod-title").text() for a in links] == [XSS_TEXT, XSS_TITLE]
    assert [a.get("data-length") for a in links] == ["1:02:05", "1:05"]
    # The facts are the server's one text of them (vod.js takes the list from this HTML).
    assert [a.one(data_role="vod-facts").text() for a in links] == [
        r["facts"] for r in samples.RECORDINGS
    ]
    downloads = section.find_all("a", class_="vod-download")
    assert [a.get("href") for a in downloads] == [r["mp4_url"] for r in samples.RECORDINGS]
    assert all(a.text() == "Download MP4" for a in downloads)
    thumb = links[0].one("img", class_="vod-thumb")
    assert thumb.get("src") == "/vod/alice/20261123-180000/thumbnail.jpg"
    assert thumb.get("alt") == ""  # decorative: the title says what it is
    assert not links[1].find_all("img")
    scripts = [s.get("src") for s in result.dom.find_all("script")]
    assert "/static/vod.js" in scripts


def test_channel_page_without_recordings_says_so() -> None:
    result = page("channel-live")
    section = result.dom.one(data_vod_list=None)
    assert not section.find_all("a", class_="vod-link")
    assert section.one(data_role="vod-empty").text() == "No past broadcasts yet."


def test_player_has_vod_controls_and_the_recording_offer() -> None:
    player = page("channel-live").dom.one(id="player")
    bar = player.one(class_="vod-controls")
    for control in ("play", "seek", "speed", "live"):
        assert bar.find_all(data_vod=control), control
    speeds = [o.get("value") for o in bar.one("select", data_vod="speed").find_all("option")]
    assert speeds == ["0.5", "0.75", "1", "1.25", "1.5", "2"]
    offer = player.one(class_="card card-ended").one(data_role="vod-offer")
    assert offer.one("button", data_action="watch-recording").text() == "Watch the recording"
    # DVR: a rewind button on the live controls (shown by vod.js when there is a
    # recording to rewind into) and the "behind live" readout in the recording bar.
    rewind = player.one(class_="controls").one("button", data_action="rewind")
    assert "hidden" in rewind.attrs
    assert "Rewind" in rewind.text()
    assert bar.one(data_role="vod-behind")


def test_watch_page_keeps_the_player_contract() -> None:
    result = page("watch")
    player = result.dom.one(id="player")
    assert player.get("data-state") == "connecting"
    assert "muted" in player.one("video").attrs
    for action in ("unmute", "mute", "stats", "fullscreen"):
        assert player.find_all(data_action=action), action
    assert "alice is offline" in re.sub(r"\s+", " ", player.one(class_="card card-offline").text())
    assert result.dom.one("h1", id="channel-title").text() == "alice"
    assert [s.get("src") for s in result.dom.find_all("script")] == [
        "/static/live-clock.js",
        "/static/header-menu.js",
        "/static/player.js",
    ]


def test_watch_page_renders_with_only_a_channel_name() -> None:
    """The spine's stub server renders watch.html with nothing but `channel`."""
    html = samples.environment().get_template("watch.html").render(channel="bob")
    assert 'data-channel="bob"' in html
    assert "Log in" in html


def test_channel_page_chat_panel() -> None:
    result = page("channel-live")
    root = result.dom.one(data_channel_page=None)
    chat = root.one("aside", data_chat=None)
    assert chat.get("data-ws-path") == "/chat/alice/ws"
    assert chat.get("data-login-url") == "/login?next=/alice"
    assert chat.get("data-logged-in") == "false"
    assert chat.get("data-can-moderate") == "false"  # the socket's welcome decides
    log = chat.one("ol", data_chat_role="log")
    assert (log.get("role"), log.get("aria-live")) == ("log", "polite")
    assert log.children == []  # messages come from the socket, drawn by chat.js
    text = chat.one("input", data_chat_role="input")
    assert text.get("maxlength") == "500"
    assert "disabled" in text.attrs  # until the socket says this visitor may write
    assert chat.one(data_chat_role="status").get("role") == "alert"
    like = chat.one("button", data_chat_role="like")
    assert like.one(data_chat_role="likes").text() == "0"
    assert like.get("data-bursts") == "0"
    # Moderation tools and the message menu exist but are hidden until permitted.
    for role in ("mod", "menu"):
        assert "hidden" in chat.one(data_chat_role=role).attrs
    mod = chat.one(data_chat_role="mod")
    for mode in (
        "slow_mode_on",
        "slow_mode",
        "followers_only",
        "followers_min_minutes",
        "block_links",
        "require_account",
    ):
        assert mod.one("input", data_mode=mode)
    assert mod.one("textarea", data_chat_role="words")
    assert "owner-only" in (mod.one("form", data_chat_role="mods-form").get("class") or "")
    for action in ("delete", "timeout", "ban", "clear", "modlog", "toggle-mod", "like"):
        assert chat.find_all(data_chat_action=action), action
    # The chat's forms are the script's: nothing is ever POSTed by them.
    assert all(f.get("method") is None for f in chat.find_all("form"))
    # The chat does not reuse the page's data-role names (channel.js owns those).
    assert not chat.find_all(data_role=None)
    assert len(root.find_all(data_role="viewers")) == 1
    assert "/static/chat.js" in [s.get("src") for s in result.dom.find_all("script")]


def test_chat_panel_paths_are_url_encoded() -> None:
    result = render("channel.html", samples.common(channel=samples.channel(username=XSS_TEXT)))
    chat = result.dom.one("aside", data_chat=None)
    quoted = "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"
    assert chat.get("data-channel") == XSS_TEXT
    assert chat.get("data-ws-path") == f"/chat/{quoted}/ws"
    assert chat.get("data-login-url") == f"/login?next=/{quoted}"
    assert not result.dom.find_all("img")


def test_follow_button_for_each_visitor() -> None:
    # Logged out: a link to log in that comes back here.
    anonymous = page("channel-live").dom.one(data_channel_page=None)
    link = anonymous.one("a", class_="follow-button")
    assert link.get("href") == "/login?next=/alice"
    assert "Follow" in link.text()
    assert not anonymous.find_all("button", data_follow=None)
    # Logged in and following / not following: a toggle for the follow endpoint.
    following = page("channel-following").dom.one("button", data_follow=None)
    assert following.get("data-follow-api") == "/api/v1/channels/alice/follow"
    assert following.get("aria-pressed") == "true"
    assert following.one(data_role="follow-label").text() == "Following"
    not_following = page("channel-not-following").dom.one("button", data_follow=None)
    assert not_following.get("aria-pressed") == "false"
    assert not_following.one(data_role="follow-label").text() == "Follow"
    # The streamer on their own channel: no follow button, a way to the dashboard.
    own = page("channel-offline").dom.one(data_channel_page=None)
    assert not own.find_all(class_="follow-button")
    assert own.find_all("a", href="/dashboard")
    # The follower count stays where channel.js updates it.
    assert page("channel-following").dom.one(data_role="followers").text() == "42"


def test_following_page_lists_live_channels_first() -> None:
    result = page("following")
    live = result.dom.one("ul", class_="following-live")
    cards = [c for c in live.children if isinstance(c, Element)]
    assert [c.get("data-username") for c in cards] == ["alice", "bob_builds"]
    assert cards[0].one(data_role="viewers").text() == "1,234"
    assert cards[0].one("img", data_role="thumbnail").get("src") == "/thumbs/alice.svg"
    assert cards[1].one(data_role="title").text() == XSS_TITLE
    rows = result.dom.one("ul", class_="channel-list").find_all("li")
    assert [r.get("data-username") for r in rows] == ["dave", "erin", "newcomer"]
    assert rows[0].one("a").get("href") == "/dave"
    assert rows[0].one("time").get("data-ago") == str(samples.NOW - 86400 * 3)
    assert rows[1].one(class_="channel-row-title").text() == XSS_TITLE
    assert "Not live yet" in rows[2].text()
    assert "2 live · 5 channels you follow" in result.body_text()
    # Live cards come before the offline list.
    order = [el.get("class") for el in result.dom.iter() if el.tag == "ul" and el.get("class")]
    assert order.index("stream-grid following-live") < order.index("channel-list")
    nav = result.dom.one("nav", class_="site-nav")
    assert nav.one("a", href="/following").get("aria-current") == "page"


def test_following_page_empty() -> None:
    result = page("following-empty")
    empty = result.dom.one(class_="empty-state")
    assert "You don't follow anyone yet" in empty.text()
    assert empty.find_all("a", href="/")
    # The lists are there, hidden and empty, for following.js to fill as channels come.
    for name in ("live-section", "offline-section"):
        section = result.dom.one(data_role=name)
        assert "hidden" in section.attrs
        assert not section.find_all("li")


@pytest.mark.parametrize("name", sorted(set(PAGES) - BARE))
def test_logged_in_pages_load_go_live_notices(name: str) -> None:
    _, context = PAGES[name]
    result = page(name)
    scripts = [s.get("src") for s in result.dom.find_all("script")]
    nav = {a.get("href") for a in result.dom.one("nav", class_="site-nav").find_all("a")}
    logged_in = context["session"].logged_in
    assert ("/static/notify.js" in scripts) == logged_in
    assert ("/following" in nav) == logged_in


# --- dashboard -------------------------------------------------------------------------


def test_dashboard_forms_and_settings() -> None:
    result = page("dashboard")
    root = result.dom.one(data_dashboard=None)
    assert root.get("data-health-api") == "/api/v1/me/health"
    assert root.get("data-channel-api") == "/api/v1/me/channel"
    info = root.one("form", data_role="stream-info-form")
    assert info.one("input", name="title").get("maxlength") == "140"
    assert info.one("input", name="title").get("value") == "Chess openings"
    assert info.one("textarea", name="description").get("maxlength") == "2000"
    select = info.one("select", name="category")
    assert select.one("option", selected=None).get("value") == "chess"
    assert select.find_all("option")[0].get("value") == ""
    assert info.one(data_role="save-status").get("role") == "status"
    record = info.one("input", name="record_broadcasts")
    assert "checked" in record.attrs
    assert "disabled" not in record.attrs
    ctx = PAGES["dashboard"][1]
    off = render("dashboard.html", {**ctx, "record_broadcasts": False})
    assert "checked" not in off.dom.one("input", name="record_broadcasts").attrs
    unrecorded = render("dashboard.html", {**ctx, "site_records": False})
    assert "disabled" in unrecorded.dom.one("input", name="record_broadcasts").attrs
    assert "This site does not record broadcasts." in unrecorded.body_text()
    # Stream key: OBS settings and a regenerate form behind a confirm step.
    assert root.one("input", id="obs-server").get("value") == samples.RTMP_URL
    assert root.one("input", id="obs-server-whip").get("value") == "https://example.com/whip"
    assert (
        "the key shown once when you created it"
        in root.one("section", class_="panel panel-key").text()
    )
    assert root.one(id="ffmpeg-command").text().endswith(f"{samples.RTMP_URL}/KEY")
    regenerate = root.one("form", action="/dashboard/stream-key")
    confirm = regenerate.ancestors()[1]
    assert confirm.tag == "details"
    assert "Regenerate? OBS will need the new key." in confirm.text()
    # Health panel and the small preview player.
    health = root.one(data_role="health")
    for key in ("codec", "resolution", "fps", "bitrate", "keyframe_interval", "uptime", "viewers"):
        assert health.one(data_health=key).text() == EN_DASH
    assert "hidden" in health.one(data_role="health-warnings").attrs
    player = root.one(id="player")
    assert "player-small" in (player.get("class") or "")
    assert player.get("data-keys") == "off"
    assert player.get("data-ws-path") == "/live/alice/ws?preview=1"  # not counted as a viewer
    # Tokens: one revoke form each, a create form, and no secret on the page.
    assert root.one("form", action="/dashboard/tokens").one("input", name="name")
    assert root.one("form", action="/dashboard/tokens/7/revoke").get("method") == "post"
    assert root.one("form", action="/dashboard/tokens/8/revoke")
    assert XSS_TEXT in root.one("table", data_role="tokens").text()
    assert not result.dom.find_all(data_role="stream-key")
    assert not result.dom.find_all(data_role="api-token")
    assert "won't be shown again" not in result.html


def test_dashboard_shows_new_secrets_once_with_copy_buttons() -> None:
    result = page("dashboard-new-secrets")
    key = result.dom.one("input", data_role="stream-key")
    assert key.get("value") == NEW_KEY
    assert "readonly" in key.attrs
    assert result.dom.one("button", data_copy="stream-key")
    token = result.dom.one("input", data_role="api-token")
    assert token.get("value") == NEW_TOKEN
    assert result.dom.one("button", data_copy="api-token")
    assert result.html.count("won't be shown again") == 2
    assert result.html.count(NEW_KEY) == 1


def test_dashboard_regenerate_form_is_the_only_way_to_a_new_key() -> None:
    forms = page("dashboard").dom.find_all("form", method="post")
    assert sorted(f.get("action") or "" for f in forms) == [
        "/dashboard/logout-everywhere",
        "/dashboard/password",
        "/dashboard/sessions/3/end",
        "/dashboard/sessions/4/end",
        "/dashboard/stream-key",
        "/dashboard/tokens",
        "/dashboard/tokens/7/revoke",
        "/dashboard/tokens/8/revoke",
        "/dashboard/visibility",
        "/logout",
    ]


def test_dashboard_lists_sessions_and_logs_out_everywhere() -> None:
    result = page("dashboard")
    table = result.dom.one("table", data_role="sessions")
    rows = table.find_all("tr")[1:]
    assert len(rows) == 2
    assert "This browser" in rows[0].text()
    assert "This browser" not in rows[1].text()
    assert "192.0.2.7" in rows[0].text()
    assert XSS_TEXT in rows[1].text()  # a hostile User-Agent stays text
    everywhere = result.dom.one("form", action="/dashboard/logout-everywhere")
    assert "Yes, log out everywhere" in everywhere.text()
    password = result.dom.one("form", action="/dashboard/password")
    names = {i.get("name") for i in password.find_all("input")}
    assert {"current_password", "new_password", "new_password_confirm", "csrf_token"} <= names


# --- accounts, admin, errors -----------------------------------------------------------


def test_login_form() -> None:
    result = page("login")
    form = result.dom.one("form", action="/login")
    assert form.get("method") == "post"
    assert form.one("input", name="username").get("value") == XSS_TEXT
    assert form.one("input", name="password").get("type") == "password"
    assert form.one("input", name="next").get("value") == XSS_TEXT
    assert result.dom.one(role="alert").text() == "Wrong username or password"
    assert result.dom.find_all("a", href="/register")


def test_register_form_states_the_rules() -> None:
    result = page("register")
    form = result.dom.one("form", action="/register")
    for name in ("username", "password", "password_confirm"):
        assert form.one("input", name=name)
    assert form.one("input", name="username").get("pattern") == "[A-Za-z0-9_]{3,25}"
    assert form.one("input", name="password").get("minlength") == "10"
    text = re.sub(r"\s+", " ", form.text())
    assert f"3{EN_DASH}25 characters: letters, digits and underscore" in text
    assert "At least 10 characters" in text
    assert result.dom.one(role="alert").text() == XSS_TITLE


def test_admin_page_has_a_confirmed_stop_button_per_stream() -> None:
    result = page("admin")
    rows = result.dom.find_all("tbody")[0].find_all("tr")
    assert [r.get("data-username") for r in rows] == [s["username"] for s in samples.STREAMS]
    stop = rows[1].one("form")
    assert stop.get("action") == "/admin/streams/bob_builds/stop"
    # The form is in a popover dialog (the top layer: no table clips it) the Stop opens,
    # with an optional reason the streamer is shown.
    dialog = stop.ancestors()[0]
    assert "popover" in dialog.attrs
    assert rows[1].one("button", **{"data-opens": dialog.get("id")}).text() == "Stop"
    assert stop.one("input", type="text").get("name") == "reason"
    assert "Stop bob_builds's broadcast now?" in rows[1].text()
    assert rows[2].one("form").get("action") == (
        "/admin/streams/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/stop"
    )
    assert "4,500 kb/s" in rows[1].text()
    assert f"1920{TIMES}1080" in rows[1].text()
    assert XSS_TITLE in rows[1].text()
    assert "Nobody is live" in page("admin-empty").body_text()


def test_dashboard_says_an_administrator_stopped_the_broadcast_and_reset_the_key() -> None:
    result = page("dashboard-stopped-by-admin")
    said = result.dom.one(**{"data-role": "stopped-by-admin"})
    assert said.text() == f"Stopped by an administrator: {XSS_TEXT}"
    assert "An administrator reset your stream key" in result.body_text()
    assert result.dom.one("input", **{"data-role": "stream-key"}).get("value") == NEW_KEY
    assert "Stopped by an administrator" not in page("dashboard").body_text()


def test_admin_page_shows_the_recordings_disk_use() -> None:
    result = page("admin")
    summary = re.sub(r"\s+", " ", result.dom.one("p", **{"data-role": "disk-summary"}).text())
    assert "3.4 GB in 4 recordings" in summary
    assert "50.0 GB free of 250.0 GB on the disk" in summary
    assert "kept 30.0 days" in summary
    assert "1 recording now" in summary
    rows = result.dom.one("table", **{"data-role": "disk-table"}).one("tbody").find_all("tr")
    assert [r.find_all("td")[0].text() for r in rows] == ["bob_builds", XSS_TEXT]
    assert rows[0].find_all("td")[2].text() == "3.4 GB"
    alert = result.dom.one(class_="admin-recordings").one(role="alert")
    assert f"{XSS_TEXT} 20261122-100000: disk full" in re.sub(r"\s+", " ", alert.text())
    assert "Recordings" not in page("admin-empty").body_text()


def test_error_pages() -> None:
    not_found = page("error-404")
    assert not_found.dom.one(class_="error-status").text() == "404"
    assert not_found.dom.one("h1").text() == "Nothing here"
    assert not_found.dom.one(class_="error-message").text() == f"No channel named {XSS_TEXT}"
    forbidden = page("error-403")
    assert forbidden.dom.one("h1").text() == "Not allowed"
    assert forbidden.dom.find_all("a", href="/login?next=/admin")


# --- the page scripts ------------------------------------------------------------------


@pytest.mark.parametrize(
    "script", sorted(p.name for p in STATIC.glob("*.js")), ids=lambda name: name
)
def test_scripts_never_build_html_from_strings(script: str) -> None:
    source = (STATIC / script).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, f"{script} uses {sink}"


def test_sample_pages_cover_every_template() -> None:
    pages = samples.TEMPLATES.glob("*.html")
    templates = {p.name for p in pages if not p.name.startswith("_") and p.name != "base.html"}
    assert templates == {template for template, _ in PAGES.values()}
