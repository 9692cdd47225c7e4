"""Headless Chromium drives the playground: chat with the demo agent, take over, resolve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from adapters.web import create_adapter as create_web_adapter
from bridge.config import FileConfig
from bridge.runtime import BridgeRuntime
from tests.fixtures_desk import bridge_runtime, bridge_settings

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


@pytest.fixture
async def demo_bridge(
    tmp_path: Path, redis_client: aioredis.Redis, emulator: Any
) -> AsyncIterator[BridgeRuntime]:
    """The web adapter answered by the default (demo) agent, as in the zero-configuration run."""
    settings = bridge_settings(tmp_path, emulator, file=FileConfig())
    web = create_web_adapter(settings, redis_client)
    async with bridge_runtime(settings, redis_client, emulator, [web]) as rt:
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
