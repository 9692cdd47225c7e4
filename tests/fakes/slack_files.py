"""Files for the fake Slack: uploads as Slack describes them, `url_private` downloads counted."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_ids = itertools.count(1)
_CHUNK = 64 * 1024


@dataclass
class Files:
    """`url_private` needs `Authorization: Bearer <bot token>`; without a valid one Slack
    answers its HTML sign-in page (200), which is what the fake does too."""

    base_url: Callable[[], str]
    valid_token: Callable[[str], bool]
    stored: dict[str, tuple[dict[str, Any], bytes | None]] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)

    def add(
        self,
        name: str,
        *,
        content: bytes | None = None,
        size: int | None = None,
        mimetype: str = "text/plain",
        filetype: str = "text",
    ) -> dict[str, Any]:
        """A file object as a `file_share` message carries it (`content` None: only a size)."""
        file_id = f"F{next(_ids):06d}"
        length = len(content) if content is not None else int(size or 0)
        url = f"{self.base_url()}files-pri/{file_id}/{name}"
        info = {
            "id": file_id, "name": name, "title": name, "mimetype": mimetype,
            "filetype": filetype, "size": length, "mode": "hosted", "is_external": False,
            "url_private": url, "url_private_download": url + "?download=1",
        }  # fmt: skip
        self.stored[file_id] = (info, content)
        return info

    async def handle(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        auth = request.headers.get("Authorization", "")
        if not self.valid_token(auth.removeprefix("Bearer ")):
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        if file_id not in self.stored:
            return web.Response(status=404)
        self.downloads.append(file_id)
        info, content = self.stored[file_id]
        if content is not None:
            return web.Response(body=content, content_type=info["mimetype"])
        response = web.StreamResponse(headers={"Content-Type": info["mimetype"]})
        response.content_length = info["size"]
        await response.prepare(request)
        for start in range(0, info["size"], _CHUNK):
            await response.write(b"\0" * min(_CHUNK, info["size"] - start))
        return response
