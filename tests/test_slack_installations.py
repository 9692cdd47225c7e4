"""The Redis installation and OAuth state stores, through slack_sdk's async interfaces."""

from __future__ import annotations

from typing import Any

from slack_sdk.oauth.installation_store.models.installation import Installation

from adapters.slack.installations import RedisInstallationStore, RedisOAuthStateStore


def installation(
    team: str | None,
    *,
    enterprise: str | None = None,
    org_wide: bool = False,
    user: str = "U0INSTALLER",
    token: str = "xoxb-1",  # noqa: S107
) -> Installation:
    return Installation(
        app_id="A0001",
        enterprise_id=enterprise,
        team_id=team,
        bot_token=token,
        bot_id="B1",
        bot_user_id="UBOT",
        bot_scopes="chat:write,app_mentions:read",
        user_id=user,
        is_enterprise_install=org_wide,
    )


async def test_installations_are_found_per_workspace_and_round_trip(redis_client: Any) -> None:
    store = RedisInstallationStore(redis_client)
    await store.async_save(installation("T1", token="xoxb-one"))
    await store.async_save(installation("T2", token="xoxb-two"))
    one = await store.async_find_installation(enterprise_id=None, team_id="T1")
    two = await store.async_find_bot(enterprise_id=None, team_id="T2")
    assert one is not None
    assert two is not None
    assert (one.bot_token, one.bot_scopes, one.user_id) == (
        "xoxb-one",
        ["chat:write", "app_mentions:read"],
        "U0INSTALLER",
    )
    assert two.bot_token == "xoxb-two"
    assert await store.async_find_installation(enterprise_id=None, team_id="T3") is None


async def test_an_org_wide_install_serves_every_workspace_of_its_enterprise(
    redis_client: Any,
) -> None:
    store = RedisInstallationStore(redis_client)
    await store.async_save(installation(None, enterprise="E1", org_wide=True, token="xoxb-org"))
    found = await store.async_find_installation(
        enterprise_id="E1", team_id="T9", is_enterprise_install=True
    )
    assert found is not None
    assert found.bot_token == "xoxb-org"
    assert await store.find_for_team("T9") is None  # not yet seen from that workspace
    await store.remember_team("T9", "E1", org_wide=True)
    by_team = await store.find_for_team("T9")
    assert by_team is not None
    assert by_team.bot_token == "xoxb-org"


async def test_a_grid_workspace_install_is_found_by_its_team(redis_client: Any) -> None:
    store = RedisInstallationStore(redis_client)
    await store.async_save(installation("T5", enterprise="E1", token="xoxb-grid-ws"))
    found = await store.find_for_team("T5")
    assert found is not None
    assert found.bot_token == "xoxb-grid-ws"


async def test_delete_all_removes_the_installation_and_its_bot(redis_client: Any) -> None:
    store = RedisInstallationStore(redis_client)
    await store.async_save(installation("T1"))
    await store.async_save(installation("T2"))
    await store.async_delete_all(enterprise_id=None, team_id="T1")
    assert await store.async_find_installation(enterprise_id=None, team_id="T1") is None
    assert await store.async_find_bot(enterprise_id=None, team_id="T1") is None
    assert (
        await store.async_find_installation(enterprise_id=None, team_id="T1", user_id="U0INSTALLER")
        is None
    )
    assert await store.async_find_bot(enterprise_id=None, team_id="T2") is not None


async def test_a_revoked_bot_token_leaves_no_usable_installation(redis_client: Any) -> None:
    store = RedisInstallationStore(redis_client)
    await store.async_save(installation("T1"))
    await store.async_delete_bot(enterprise_id=None, team_id="T1")
    assert await store.async_find_installation(enterprise_id=None, team_id="T1") is None


async def test_an_oauth_state_is_consumed_once(redis_client: Any) -> None:
    states = RedisOAuthStateStore(redis_client)
    state = await states.async_issue()
    assert await states.async_consume(state) is True
    assert await states.async_consume(state) is False
    assert await states.async_consume("never-issued") is False
