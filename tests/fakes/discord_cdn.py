"""The fake Discord's CDN: attachments uploaded by test users, served (and every fetch recorded)
the way cdn.discordapp.com serves them."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.discord_wire import Json


@dataclass
class FakeCdn:
    base_url: str = ""
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    def attachment(
        self,
        attachment_id: str,
        channel_id: str,
        filename: str,
        data: bytes,
        content_type: str | None,
        size: int | None = None,
    ) -> Json:
        """An attachment object as in a message payload. `size` may claim more than `data`
        holds (a 50 MB file without 50 MB in memory: only a fetch would notice)."""
        path = f"/attachments/{channel_id}/{attachment_id}/{filename}"
        self.files[path] = (data, content_type or "application/octet-stream")
        raw: Json = {
            "id": attachment_id, "filename": filename, "size": len(data) if size is None else size,
            "url": f"{self.base_url}{path}?ex=0&is=0&hm=fake",
            "proxy_url": f"{self.base_url}{path}", "spoiler": False,
        }  # fmt: skip
        if content_type is not None:
            raw["content_type"] = content_type
        return raw

    async def serve(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        self.fetched.append(path)
        if path not in self.files:
            return web.Response(status=404, text="Not Found")
        data, content_type = self.files[path]
        return web.Response(body=data, headers={"Content-Type": content_type})
