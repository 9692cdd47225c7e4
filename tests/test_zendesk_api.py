"""The Ticketing client against the fake Zendesk: auth, comments, the duplicate check's paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.helpdesk import DeskApi
from adapters.zendesk.api import Ticketing
from bridge.errors import PermanentPlatformError
from tests.fakes.zendesk import FakeZendesk, Ticket
from tests.fixtures_helpdesk import FAST_RETRY


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def client(
    zendesk: FakeZendesk, http: httpx.AsyncClient, *, token: str = "", page_size: int = 100
) -> Ticketing:
    api = DeskApi("Zendesk", http, FAST_RETRY)
    bot = str(zendesk.bot_user_id)
    return Ticketing(zendesk.url, zendesk.email, token or zendesk.api_token, bot, api, page_size)


def ticket_with_comments(zendesk: FakeZendesk, bodies: list[tuple[int, str]]) -> Ticket:
    ticket = Ticket(4711, 501, "Subject", "Description")
    zendesk.tickets[ticket.id] = ticket
    for author, body in bodies:
        zendesk._store_comment(ticket, author, body, public=True)
    return ticket


async def test_duplicate_check_walks_pages_newest_first(
    zendesk: FakeZendesk, http: httpx.AsyncClient
) -> None:
    bot = zendesk.bot_user_id
    ticket = ticket_with_comments(
        zendesk, [(501, "q1"), (bot, "the answer"), (501, "q2"), (501, "q3"), (501, "q4")]
    )
    tickets = client(zendesk, http, page_size=2)
    since = datetime.now(UTC) - timedelta(minutes=5)
    found = await tickets._find_comment(str(ticket.id), "the answer", True, since)
    assert found == [str(ticket.comments[1]["id"])]
    gets = [call for call in zendesk.api_calls if call[0] == "GET"]
    assert len(gets) == 2  # newest two, then the next page with the answer
    assert await tickets._find_comment(str(ticket.id), "never posted", True, since) == []
    assert await tickets._find_comment(str(ticket.id), "the answer", False, since) == []


async def test_duplicate_check_stops_at_comments_older_than_the_post(
    zendesk: FakeZendesk, http: httpx.AsyncClient
) -> None:
    ticket = ticket_with_comments(zendesk, [(zendesk.bot_user_id, "same text")])
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await client(zendesk, http)._find_comment(str(ticket.id), "same text", True, later) == []


async def test_wrong_token_is_refused_for_good(
    zendesk: FakeZendesk, http: httpx.AsyncClient
) -> None:
    ticket = ticket_with_comments(zendesk, [])
    with pytest.raises(PermanentPlatformError, match="HTTP 401"):
        await client(zendesk, http, token="wrong").comment(str(ticket.id), "hi", public=True)
    with pytest.raises(PermanentPlatformError, match="did not accept"):
        await client(zendesk, http, token="wrong").me()
    assert (await client(zendesk, http).me())["id"] == zendesk.bot_user_id
