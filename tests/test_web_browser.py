"""Headless Chromium drives the playground and the operator view at phone and desktop widths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from adapters.web import create_adapter as create_web_adapter
from bridge.config import FileConfig
from bridge.emulator.agents import PensionsQuestions
from bridge.runtime import BridgeRuntime
from tests.fixtures_desk import bridge_runtime, bridge_settings, web_settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
TOKEN = "browser-operator-token-0123"
SMALL_PHONE = {"width": 360, "height": 740}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 820}
WIDTHS = pytest.mark.parametrize(
    "viewport", [SMALL_PHONE, PHONE, DESKTOP], ids=["360px", "390px", "1280px"]
)
DEMO_STATUSES = ("Reading your question…", "Looking up pension rules…")


@pytest.fixture
async def demo_bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any
) -> AsyncIterator[BridgeRuntime]:
    """The web adapter answered by the default (demo) agent, as in the zero-configuration run."""
    emulator.state.register_agent(PensionsQuestions())  # the pausing one, as `make run` has it
    settings = bridge_settings(tmp_path, emulator, file=FileConfig())
    web = create_web_adapter(settings, redis_client, web_settings())
    async with bridge_runtime(settings, redis_client, emulator, [web]) as rt:
        yield rt


@asynccontextmanager
async def off_loopback(
    tmp_path: Path, redis: aioredis.Redis, emulator: Any, **web: Any
) -> AsyncIterator[BridgeRuntime]:
    """Bound to every interface, so the pages need the operator token."""
    settings = bridge_settings(tmp_path, emulator, http_host="0.0.0.0")
    adapter = create_web_adapter(settings, redis, web_settings(token=TOKEN, **web))
    async with bridge_runtime(settings, redis, emulator, [adapter]) as rt:
        yield rt


@pytest.fixture
async def guarded_bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any
) -> AsyncIterator[BridgeRuntime]:
    async with off_loopback(tmp_path, redis_client, emulator) as rt:
        yield rt


@pytest.fixture
async def public_bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any
) -> AsyncIterator[BridgeRuntime]:
    """Visitors without the token may chat."""
    async with off_loopback(tmp_path, redis_client, emulator, public_playground=True) as rt:
        yield rt


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test does)")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            user_data_dir=tmp_path / "chromium-profile",
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 820},
        )
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        await context.close()


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=path, full_page=True)
    return path


async def test_playground_chat_takeover_resolve_and_operator_view(
    demo_bridge: BridgeRuntime, browser: BrowserContext, emulator: Any
) -> None:
    page = await browser.new_page()
    await page.goto(f"{demo_bridge.http_url}/playground")
    await page.click("#new-thread")
    await page.fill("#text", "How much can I pay into my pension?")
    await page.press("#text", "Enter")

    answer = page.locator(".msg.agent .text").first
    await expect(answer).to_be_visible()
    [conversation] = emulator.state.conversations.values()
    [agent_message] = [m for m in conversation.messages if m.role == "agent"]
    await expect(answer).to_have_text(agent_message.content)
    assert agent_message.name == "pensions-questions-latest"
    state = page.locator("#thread-state")
    await expect(state).to_have_attribute("data-state", "bot")

    await page.click("#handoff")
    await expect(state).to_have_attribute("data-state", "human")
    await expect(page.locator(".msg.notice").first).to_contain_text("Handing this thread over")
    await page.fill("#text", "Hi, I am Sam from the support team.")
    await page.click("#send-staff")
    await expect(page.locator(".msg.staff .text")).to_have_text(
        "Hi, I am Sam from the support team."
    )
    await page.click("#resolve")
    await expect(state).to_have_attribute("data-state", "resolved")
    await expect(page.locator("#resolve")).to_be_disabled()
    shot = await screenshot(page, "playground.png")
    assert shot.stat().st_size > 0

    await page.click("text=Operator view")
    row = page.locator("tr[data-thread^='web:playground:local:']")
    await expect(row).to_have_count(1)
    await expect(row.locator("td.status [data-state]")).to_have_attribute("data-state", "resolved")
    await expect(row).to_contain_text(conversation.id)
    await expect(row).to_contain_text("pensions-questions-latest")
    await screenshot(page, "operator.png")

    await row.locator("a").first.click()
    history = page.locator("#history")
    await expect(history).to_contain_text("How much can I pay into my pension?")
    await expect(history).to_contain_text(agent_message.content)
    await screenshot(page, "operator-thread.png")
    assert emulator.state.conversations[conversation.id].data["status"] == "resolved"


async def open_page(browser: BrowserContext, url: str, viewport: dict[str, int]) -> Page:
    page = await browser.new_page()
    await page.set_viewport_size(viewport)
    await page.goto(url)
    return page


async def no_horizontal_scroll(page: Page) -> None:
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"


async def record_status_lines(page: Page) -> None:
    """Remember every text the status line shows, however briefly."""
    await page.evaluate(
        """() => {
          window.statusSeen = [];
          const line = document.getElementById("status-line");
          new MutationObserver(() => window.statusSeen.push(line.textContent))
            .observe(line, {childList: true, characterData: true, subtree: true});
        }"""
    )


@WIDTHS
async def test_playground_fits_shows_status_and_keeps_errors_until_dismissed(
    demo_bridge: BridgeRuntime, browser: BrowserContext, viewport: dict[str, int]
) -> None:
    width = viewport["width"]
    page = await open_page(browser, f"{demo_bridge.http_url}/playground", viewport)
    await expect(page.locator("#thread-title")).to_have_text("No thread yet")
    await expect(page.locator("#thread-state")).to_be_hidden()  # no empty badge pill
    await expect(page.locator("#agent option[value='parrot']")).to_have_count(1)
    await no_horizontal_scroll(page)
    await screenshot(page, f"playground-empty-{width}.png")

    await page.click("#new-thread")
    await record_status_lines(page)
    await page.fill("#text", "Hi, my name is Ada. When can I take my pension?")
    await page.press("#text", "Enter")
    await expect(page.locator(".msg.agent .text")).to_contain_text("Nice to meet you, Ada")
    seen = await page.evaluate("() => window.statusSeen")
    assert set(DEMO_STATUSES) & set(seen), seen
    await expect(page.locator("#status-line")).to_have_text("")
    await expect(page.locator("#thread-list .preview").first).to_have_text(
        "Hi, my name is Ada. When can I take my pension?"
    )

    polls: list[str] = []
    page.on("response", lambda r: polls.append(r.url) if "?after=" in r.url else None)
    await page.fill("#text", "x" * 8001)
    await page.click("#send-user")
    error = page.locator("#error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("text must be 1-8000 characters")
    after_error = len(polls)
    for _ in range(100):  # several polls later (each would have wiped a status-line error)
        if len(polls) >= after_error + 3:
            break
        await page.wait_for_timeout(100)
    assert len(polls) >= after_error + 3
    await expect(error).to_be_visible()
    await no_horizontal_scroll(page)
    await screenshot(page, f"playground-error-{width}.png")
    await page.click("#error-close")
    await expect(error).to_be_hidden()
    await expect(page.locator("#text")).to_have_value("x" * 8001)  # kept, to be shortened

    await page.fill("#text", "Hello from the support team.")
    await page.click("#send-staff")
    staff = page.locator(".msg.staff").last
    await expect(staff).to_contain_text("Hello from the support team.")
    colours = await page.evaluate(
        """() => ["user", "staff"].map((role) => getComputedStyle(
             document.querySelector(`.msg.${role}`)).backgroundColor)"""
    )
    assert colours[0] != colours[1]
    await no_horizontal_scroll(page)
    await screenshot(page, f"playground-{width}.png")


@WIDTHS
async def test_operator_view_fits_keeps_status_and_refreshes_itself(
    demo_bridge: BridgeRuntime, browser: BrowserContext, viewport: dict[str, int]
) -> None:
    width = viewport["width"]
    page = await open_page(browser, f"{demo_bridge.http_url}/operator", viewport)
    await expect(page.locator(".empty")).to_contain_text("No threads yet")

    # A thread started elsewhere (same browser profile, so the same visitor) appears by itself.
    created = await page.request.post(f"{demo_bridge.http_url}/playground/api/threads", data={})
    thread_id = (await created.json())["id"]
    body = {"text": "Is my pension safe?", "as": "user", "client_id": "browser-op-1"}
    url = f"{demo_bridge.http_url}/playground/api/threads/{thread_id}/messages"
    assert (await page.request.post(url, data=body)).ok
    row = page.locator(f"tr[data-thread='web:playground:local:{thread_id}']")
    await expect(row).to_be_visible(timeout=20_000)
    await expect(row.locator("td.status [data-state]")).to_have_attribute("data-state", "bot")
    status_box = await row.locator("td.status").bounding_box()
    assert status_box is not None
    assert status_box["x"] + status_box["width"] <= width
    await no_horizontal_scroll(page)
    await screenshot(page, f"operator-{width}.png")

    await row.locator("td.key a").click()
    await expect(page.locator("#history")).to_contain_text("Is my pension safe?")
    data = page.locator("dl.kv")
    await expect(data.locator("dt", has_text="ticket_id")).to_have_count(1)
    await expect(data).to_contain_text(thread_id)
    await no_horizontal_scroll(page)
    await screenshot(page, f"operator-thread-{width}.png")

    icon = await page.request.get(f"{demo_bridge.http_url}/favicon.ico")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


async def test_the_agent_picker_switches_the_thread_to_another_agent(
    demo_bridge: BridgeRuntime, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await page.goto(f"{demo_bridge.http_url}/playground")
    await page.click("#new-thread")
    picker = page.locator("#agent")
    await expect(picker).to_have_value("pensions-questions-latest")
    await page.fill("#text", "Hello")
    await page.press("#text", "Enter")
    await expect(page.locator(".msg.agent")).to_have_count(1)
    await picker.select_option("parrot")
    await expect(page.locator(".msg.notice").last).to_contain_text("answered by parrot")
    await expect(page.locator("#agent-about")).to_have_text("Repeats what you said.")
    await page.fill("#text", "Polly wants a pension")
    await page.press("#text", "Enter")
    await expect(page.locator(".msg.agent .text").last).to_have_text(
        "You said: Polly wants a pension"
    )


async def test_the_agent_picked_in_a_new_thread_answers_its_first_message(
    demo_bridge: BridgeRuntime, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await page.goto(f"{demo_bridge.http_url}/playground")
    await page.click("#new-thread")
    picker = page.locator("#agent")
    await expect(picker).to_be_enabled()
    await picker.select_option("parrot")
    await page.reload()  # the choice is kept with the thread until its first message
    await expect(picker).to_have_value("parrot")
    await page.fill("#text", "First words")
    await page.press("#text", "Enter")
    await expect(page.locator(".msg.agent .text")).to_have_text("You said: First words")
    await expect(page.locator(".msg.agent .who")).to_have_text("parrot")
    await expect(picker).to_have_value("parrot")
    await expect(page.locator(".msg.notice")).to_have_count(0)


async def test_off_loopback_the_browser_signs_in_once_and_then_chats_as_staff(
    guarded_bridge: BridgeRuntime, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await page.set_viewport_size(PHONE)
    await page.goto(f"{guarded_bridge.http_url}/operator")
    await expect(page).to_have_url(f"{guarded_bridge.http_url}/web/login?next=%2Foperator")
    await page.fill("input[name=token]", "wrong-token-wrong-token")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_have_text("Wrong token.")
    await no_horizontal_scroll(page)
    await screenshot(page, "login-390.png")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{guarded_bridge.http_url}/operator")
    await page.click("text=Playground")
    await page.click("#new-thread")
    await page.fill("#text", "Signed in and chatting")
    await page.press("#text", "Enter")
    await expect(page.locator(".msg.agent .text")).to_have_text("You said: Signed in and chatting")
    await expect(page.locator("#send-staff")).to_be_visible()
    await page.click("text=Sign out")
    await expect(page.locator("input[name=token]")).to_be_visible()


async def test_a_public_playground_visitor_chats_without_staff_controls(
    public_bridge: BridgeRuntime, browser: BrowserContext
) -> None:
    page = await browser.new_page()
    await page.set_viewport_size(PHONE)
    await page.goto(f"{public_bridge.http_url}/playground")
    await page.click("#new-thread")
    await page.fill("#text", "Just visiting")
    await page.press("#text", "Enter")
    await expect(page.locator(".msg.agent .text")).to_have_text("You said: Just visiting")
    for control in ("#send-staff", "#handoff", "#resolve"):
        await expect(page.locator(control)).to_be_hidden()
    await expect(page.locator("#agent")).to_be_disabled()
    await expect(page.locator("#sign-out")).to_be_hidden()
    await expect(page.locator("#thread-meta a")).to_have_count(0)
    await expect(page.locator("#thread-meta")).to_contain_text("conversation")
    await no_horizontal_scroll(page)
    await screenshot(page, "playground-visitor-390.png")
    await page.goto(f"{public_bridge.http_url}/operator")
    await expect(page.locator("input[name=token]")).to_be_visible()
