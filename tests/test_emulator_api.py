"""The emulator's HTTP surface: auth, errors, bodies without Content-Type, paging, resources."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, create_app
from tests.fixtures_emulator import Emulator


async def create(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    response = await client.post("/v1/conversations", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Api-Key": "wrong", "X-Org-Id": "emulator-org"}, {"X-Org-Id": "emulator-org"}],
)
async def test_missing_or_unknown_api_key_is_401_with_json_detail(
    emulator: Emulator, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=emulator.url, headers=headers) as client:
        response = await client.get("/v1/conversations/me")
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("org_id", ["emulator-org-2", "", None])
async def test_an_org_the_key_does_not_belong_to_is_403(
    emulator: Emulator, org_id: str | None
) -> None:
    headers = {"X-Api-Key": emulator.api_key}
    if org_id is not None:
        headers["X-Org-Id"] = org_id
    async with httpx.AsyncClient(base_url=emulator.url, headers=headers) as client:
        response = await client.post("/v1/users/validate-me")
    assert response.status_code == 403
    assert "detail" in response.json()


async def test_auth_headers_are_accepted_in_any_letter_case(emulator: Emulator) -> None:
    headers = {"x-api-key": emulator.api_key, "X-ORG-ID": emulator.org_id}
    async with httpx.AsyncClient(base_url=emulator.url, headers=headers) as client:
        response = await client.post("/v1/users/validate-me")
    assert response.json() == {"success": True}


async def test_the_second_user_sees_none_of_the_first_orgs_conversations(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    conversation = await create(emulator_http)
    other = {"X-Api-Key": emulator.other_api_key, "X-Org-Id": emulator.other_org_id}
    async with httpx.AsyncClient(base_url=emulator.url, headers=other) as client:
        assert (await client.get(f"/v1/conversations/{conversation['id']}")).status_code == 404
        assert (await client.get("/v1/conversations/org")).json() == []


async def test_json_body_without_content_type_is_parsed(
    emulator_http: httpx.AsyncClient,
) -> None:
    body = json.dumps({"data": {"user_id": "U1"}, "source": "slack"}).encode()
    request = emulator_http.build_request("POST", "/v1/conversations", content=body)
    assert "content-type" not in request.headers
    response = await emulator_http.send(request)
    assert response.status_code == 200
    assert response.json()["data"] == {"user_id": "U1"}
    assert response.json()["source"] == "slack"


async def test_bodiless_posts_accept_an_empty_body(emulator_http: httpx.AsyncClient) -> None:
    created = await emulator_http.post("/v1/conversations")
    saved = await emulator_http.post(f"/v1/conversations/{created.json()['id']}/saved")
    assert created.status_code == 200
    assert created.json()["data"] == {}
    assert created.json()["source"] == ""
    assert saved.json()["is_saved"] is True


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"data": "not an object"}', b'{"unknown": 1}', b"[]"],
)
async def test_malformed_body_is_422_with_a_detail_object(
    emulator_http: httpx.AsyncClient, body: bytes
) -> None:
    response = await emulator_http.post("/v1/conversations", content=body)
    assert response.status_code == 422
    assert isinstance(response.json(), dict)
    assert response.json()["detail"]


async def test_unknown_conversation_is_404(emulator_http: httpx.AsyncClient) -> None:
    for response in [
        await emulator_http.get("/v1/conversations/nope"),
        await emulator_http.get("/v1/conversations/nope/messages"),
        await emulator_http.post("/v1/conversations/nope/chat?agent=parrot", json={}),
    ]:
        assert response.status_code == 404
        assert "nope" in response.json()["detail"]


async def test_literal_routes_are_not_taken_for_conversation_ids(
    emulator_http: httpx.AsyncClient,
) -> None:
    await create(emulator_http)
    for path in ("me", "org", "saved"):
        response = await emulator_http.get(f"/v1/conversations/{path}")
        assert response.status_code == 200
        assert isinstance(response.json(), list)


async def test_search_is_newest_first_by_default_and_pages_with_limit_and_offset(
    emulator_http: httpx.AsyncClient,
) -> None:
    ids = [(await create(emulator_http, data={"n": n}))["id"] for n in range(12)]
    newest = (await emulator_http.get("/v1/conversations/me", params={"limit": 5})).json()
    oldest = await emulator_http.get(
        "/v1/conversations/me", params={"reversed": "false", "limit": 5, "offset": 10}
    )
    assert [c["id"] for c in newest] == ids[::-1][:5]
    assert [c["id"] for c in oldest.json()] == ids[10:]
    assert ids == sorted(ids)  # time-ordered ids


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
async def test_paging_out_of_bounds_is_422(
    emulator_http: httpx.AsyncClient, params: dict[str, int]
) -> None:
    response = await emulator_http.get("/v1/conversations/me", params=params)
    assert response.status_code == 422


async def test_patch_with_null_fields_leaves_them_unchanged(
    emulator_http: httpx.AsyncClient,
) -> None:
    conversation = await create(emulator_http, data={"a": 1}, source="desk")
    path = f"/v1/conversations/{conversation['id']}"
    updated = await emulator_http.patch(path, json={"data": {"b": 2}, "source": None})
    unchanged = await emulator_http.patch(path, json={"data": None, "source": None})
    assert updated.json()["data"] == {"b": 2}
    assert updated.json()["source"] == "desk"
    assert unchanged.json()["data"] == {"b": 2}


async def test_save_and_unsave_show_in_is_saved_and_the_saved_list(
    emulator_http: httpx.AsyncClient,
) -> None:
    conversation = await create(emulator_http)
    path = f"/v1/conversations/{conversation['id']}/saved"
    assert (await emulator_http.post(path)).json()["is_saved"] is True
    assert len((await emulator_http.get("/v1/conversations/saved")).json()) == 1
    assert (await emulator_http.delete(path)).json()["is_saved"] is False
    assert (await emulator_http.get("/v1/conversations/saved")).json() == []


async def test_tags_attach_to_conversations_and_filter_searches(
    emulator_http: httpx.AsyncClient,
) -> None:
    tagged, _ = await create(emulator_http), await create(emulator_http)
    tag = (await emulator_http.post("/v1/tags", json={"name": "vip"})).json()
    duplicate = await emulator_http.post("/v1/tags", json={"name": "vip"})
    tags = await emulator_http.post(f"/v1/conversations/{tagged['id']}/tags/{tag['id']}")
    found = await emulator_http.get("/v1/conversations/me", params={"tag_id": tag["id"]})
    full = await emulator_http.get(f"/v1/conversations/{tagged['id']}")
    by_tag = await emulator_http.get(f"/v1/tags/{tag['id']}/conversations")
    assert duplicate.status_code == 409
    assert [t["name"] for t in tags.json()] == ["vip"]
    assert [c["id"] for c in found.json()] == [tagged["id"]]
    assert full.json()["tags"] == [tag]
    assert [c["id"] for c in by_tag.json()] == [tagged["id"]]
    assert (await emulator_http.delete(f"/v1/tags/{tag['id']}")).json() == {"success": True}
    assert (await emulator_http.get(f"/v1/conversations/{tagged['id']}/tags")).json() == []


async def test_tag_search_and_description_update(emulator_http: httpx.AsyncClient) -> None:
    tag = (await emulator_http.post("/v1/tags", json={"name": "billing"})).json()
    await emulator_http.post("/v1/tags", json={"name": "other"})
    patched = await emulator_http.patch(f"/v1/tags/{tag['id']}", json={"description": "money"})
    found = await emulator_http.get("/v1/tags", params={"search": "MONEY"})
    assert patched.json()["description"] == "money"
    assert [t["id"] for t in found.json()] == [tag["id"]]


async def test_agents_list_is_an_object_map_and_validate_answers_active_or_fail(
    emulator_http: httpx.AsyncClient,
) -> None:
    agents = (await emulator_http.get("/v1/agents")).json()
    good = await emulator_http.get("/v1/agents/validate", params={"agent": "parrot"})
    bad = await emulator_http.get("/v1/agents/validate", params={"agent": "nobody"})
    assert isinstance(agents, dict)
    assert agents["pensions-questions-latest"]["name"] == "pensions-questions-latest"
    assert {"parrot", "slow", "inspector"} <= set(agents)
    assert good.json() == {"status": "active"}
    assert bad.json() == {"status": "fail"}


async def test_runs_chat_creates_a_conversation_holding_data_and_history(
    emulator_http: httpx.AsyncClient,
) -> None:
    body = {
        "messages": [
            {"role": "user", "content": "hi", "name": None},
            {"role": "agent", "content": "hello", "name": None, "id": "ignored"},
            {"role": "user", "content": "again", "name": None},
        ],
        "data": {"k": "v"},
    }
    reply = (await emulator_http.post("/v1/runs/chat?agent=parrot", json=body)).json()
    conversation_id, run_id = reply[0]["conversation_id"], reply[0]["run_id"]
    conversation = await emulator_http.get(f"/v1/conversations/{conversation_id}")
    run = await emulator_http.get(f"/v1/runs/{run_id}")
    run_messages = await emulator_http.get(f"/v1/runs/{run_id}/messages")
    mine = await emulator_http.get("/v1/runs/me", params={"agent": "parrot"})
    assert reply[0]["content"] == "You said: again"
    assert conversation.json()["data"] == {"k": "v"}
    assert run.json()["agent"] == "parrot"
    assert [m["content"] for m in run_messages.json()] == [
        "hi",
        "hello",
        "again",
        reply[0]["content"],
    ]
    assert [r["id"] for r in mine.json()] == [run_id]


async def test_run_feedback_is_an_upsert_per_user(emulator_http: httpx.AsyncClient) -> None:
    reply = await emulator_http.post(
        "/v1/runs/chat?agent=parrot", json={"messages": [{"role": "user", "content": "x"}]}
    )
    run_id = reply.json()[0]["run_id"]
    first = await emulator_http.post(f"/v1/runs/{run_id}/feedback", json={"thumbs": "up"})
    second = await emulator_http.post(f"/v1/runs/{run_id}/feedback", json={"comment": "ok"})
    listed = await emulator_http.get(f"/v1/runs/{run_id}/feedback")
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["thumbs"] == "up"
    assert second.json()["comment"] == "ok"
    assert second.json()["updated"] is not None
    assert len(listed.json()) == 1


async def test_clone_copies_history_up_to_the_message(emulator_http: httpx.AsyncClient) -> None:
    conversation = await create(emulator_http, data={"a": 1}, source="web")
    path = f"/v1/conversations/{conversation['id']}"
    first = (
        await emulator_http.post(
            f"{path}/chat?agent=parrot", json={"messages": [{"role": "user", "content": "one"}]}
        )
    ).json()
    await emulator_http.post(
        f"{path}/chat?agent=parrot", json={"messages": [{"role": "user", "content": "two"}]}
    )
    clone = await emulator_http.post(
        "/v1/conversations/clone", params={"message_id": first[0]["id"]}, json={"source": "x"}
    )
    history = await emulator_http.get(f"/v1/conversations/{clone.json()['id']}/messages")
    assert clone.json()["cloned_from_message_id"] == first[0]["id"]
    assert clone.json()["data"] == {"a": 1}
    assert clone.json()["source"] == "x"
    assert [m["content"] for m in history.json()] == ["one", "You said: one"]


async def test_every_2xx_is_json_even_deletes(emulator_http: httpx.AsyncClient) -> None:
    conversation = await create(emulator_http)
    response = await emulator_http.delete(f"/v1/conversations/{conversation['id']}/saved")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


async def test_openapi_lists_the_api_but_not_the_admin_endpoints(
    emulator_http: httpx.AsyncClient,
) -> None:
    paths = (await emulator_http.get("/openapi.json")).json()["paths"]
    assert "/v1/conversations/{conversation_id}/chat" in paths
    assert not any(p.startswith("/_emulator") for p in paths)


async def test_reset_endpoint_forgets_everything(
    emulator: Emulator, emulator_http: httpx.AsyncClient
) -> None:
    await create(emulator_http)
    assert (await emulator_http.get("/_emulator/state")).json()["conversations"] == 1
    await emulator_http.post("/_emulator/reset")
    assert emulator.state.conversations == {}


async def test_admin_delete_removes_a_conversation_so_the_api_answers_404(
    emulator_http: httpx.AsyncClient,
) -> None:
    conversation = await create(emulator_http)
    path = f"/_emulator/conversations/{conversation['id']}"
    assert (await emulator_http.delete(path)).json() == {"success": True}
    gone = await emulator_http.get(f"/v1/conversations/{conversation['id']}/messages")
    assert gone.status_code == 404
    assert (await emulator_http.delete(path)).status_code == 404


async def test_works_mounted_under_a_prefix_as_the_bridge_serves_it() -> None:
    # In-process on purpose: the runtime mounts the app at /emulator inside its own server.
    app = Starlette(routes=[Mount("/emulator", app=create_app())])
    headers = {"X-Api-Key": DEFAULT_API_KEY, "X-Org-Id": DEFAULT_ORG_ID}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test/emulator", headers=headers
    ) as client:
        created = await client.post("/v1/conversations", content=b"{}")
        faulted = await client.get("/v1/agents", headers={"X-Emulator-Faults": "status=503"})
    assert created.status_code == 200
    assert faulted.status_code == 503
