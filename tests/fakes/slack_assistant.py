"""assistant.threads.setSuggestedPrompts and setTitle for the fake Slack, with Slack's errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.slack_channels import ChannelError

MAX_PROMPTS = 4


@dataclass
class Assistant:
    """What the app set on assistant threads, keyed by (channel, thread_ts)."""

    prompts: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    prompt_titles: dict[tuple[str, str], str] = field(default_factory=dict)
    titles: dict[tuple[str, str], str] = field(default_factory=dict)
    refuse_with: str | None = None  # e.g. "missing_scope" without assistant:write

    def set_prompts(self, args: dict[str, Any]) -> dict[str, Any]:
        where = self._thread(args)
        prompts = args.get("prompts")
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        valid = isinstance(prompts, list) and 0 < len(prompts) <= MAX_PROMPTS
        if not valid or not all(p.get("title") and p.get("message") for p in prompts):
            raise ChannelError("invalid_arguments")
        self.prompts[where] = prompts
        if args.get("title"):
            self.prompt_titles[where] = str(args["title"])
        return {}

    def set_title(self, args: dict[str, Any]) -> dict[str, Any]:
        where = self._thread(args)
        if not args.get("title"):
            raise ChannelError("invalid_arguments")
        self.titles[where] = str(args["title"])
        return {}

    def _thread(self, args: dict[str, Any]) -> tuple[str, str]:
        if self.refuse_with:
            raise ChannelError(self.refuse_with)
        channel, ts = args.get("channel_id"), args.get("thread_ts")
        if not channel or not ts:
            raise ChannelError("invalid_arguments")
        if not str(channel).startswith("D"):
            # Assistant threads live in the app's DM with the person.
            raise ChannelError("not_allowed")
        return str(channel), str(ts)
