"""People in a browser for the chat tests against a real server: sign up through the
/register form, open a page's chat, type in it, find a confirmed line."""

from __future__ import annotations

from dataclasses import dataclass, field

from playwright.async_api import Browser, BrowserContext, Dialog, Page, ViewportSize

from tests.e2e.browser import PageLog

PASSWORD = "a long enough password"
XSS = "<img src=x onerror=alert(1)>"
DESKTOP = ViewportSize(width=1280, height=720)
PHONE = ViewportSize(width=390, height=844)
WAIT_MS = 10_000  # a bound on waiting for something to show, never a timing assertion


@dataclass
class Person:
    name: str
    context: BrowserContext
    page: Page
    log: PageLog = field(default_factory=PageLog)
    dialogs: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        self.log.attach(page)

        async def dismiss(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", dismiss)

    def chat(self, selector: str = "") -> str:
        return f"[data-chat] {selector}".strip()


async def sign_up(browser: Browser, base: str, name: str, viewport: ViewportSize) -> Person:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    person = Person(name, context, page)
    person.watch(page)
    await page.goto(f"{base}/register")
    form = page.locator('form[action="/register"]')
    await form.locator('input[name="username"]').fill(name)
    await form.locator('input[name="password"]').fill(PASSWORD)
    await form.locator('input[name="password_confirm"]').fill(PASSWORD)
    await form.locator("button").click()
    await page.locator("[data-dashboard]").wait_for()
    return person


async def open_chat(person: Person, url: str) -> None:
    await person.page.goto(url)
    await person.page.wait_for_function("() => window.stromChat?.state === 'open'", timeout=WAIT_MS)


async def say(person: Person, text: str) -> None:
    chat_input = person.page.locator("#chat-input")
    await chat_input.fill(text)
    await chat_input.press("Enter")


def line(person: Person, text: str) -> str:
    """The selector of a confirmed (not pending) chat line containing ``text``."""
    return f"[data-chat-role=log] .chat-line[data-id]:has-text({text!r})"
