"""Workspaces and OAuth for the fake Slack: tokens per workspace, oauth.v2.access, revocation."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from typing import Any

_ids = itertools.count(1)


@dataclass(frozen=True)
class Workspace:
    """One installation's view of Slack: the workspace (or Grid org) and the bot in it."""

    team_id: str
    domain: str
    bot_user_id: str
    bot_id: str
    enterprise_id: str | None = None
    org_wide: bool = False  # an Enterprise Grid org-wide install: one token for every workspace

    def auth_test(self) -> dict[str, Any]:
        return {
            "url": f"https://{self.domain}.slack.com/",
            "team": self.domain.title(),
            "user": "engage",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "enterprise_id": self.enterprise_id,
            "is_enterprise_install": self.org_wide,
        }


class OAuthError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class Workspaces:
    """Which token belongs to which workspace, and the OAuth codes an install hands out."""

    def __init__(self, first: Workspace, token: str, client_id: str, client_secret: str) -> None:
        self.tokens: dict[str, Workspace] = {token: first}
        self.client_id, self.client_secret = client_id, client_secret
        self._codes: dict[str, Workspace] = {}

    def by_token(self, token: str | None) -> Workspace | None:
        return self.tokens.get(token or "")

    def grant(self, workspace: Workspace) -> str:
        """The `code` Slack would put on the redirect after someone approves the install."""
        code = f"code-{next(_ids)}"
        self._codes[code] = workspace
        return code

    def revoke(self, workspace: Workspace) -> None:
        """Uninstall: every token of that installation stops working."""
        for token in [t for t, w in self.tokens.items() if w == workspace]:
            del self.tokens[token]

    def token_of(self, workspace: Workspace) -> str:
        return next(t for t, w in self.tokens.items() if w == workspace)

    def exchange(self, args: dict[str, Any], authorization: str) -> dict[str, Any]:
        """`oauth.v2.access`: client credentials (HTTP Basic or form), then a single-use code."""
        client_id, secret = args.get("client_id"), args.get("client_secret")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
            client_id, _, secret = decoded.partition(":")
        if client_id != self.client_id:
            raise OAuthError("invalid_client_id")
        if secret != self.client_secret:
            raise OAuthError("bad_client_secret")
        workspace = self._codes.pop(str(args.get("code")), None)
        if workspace is None:
            raise OAuthError("invalid_code")
        token = f"xoxb-{workspace.enterprise_id or ''}{workspace.team_id}-{next(_ids)}"
        self.tokens[token] = workspace
        enterprise = (
            {"id": workspace.enterprise_id, "name": "Grid"} if workspace.enterprise_id else None
        )
        team = None if workspace.org_wide else {"id": workspace.team_id, "name": workspace.domain}
        return {
            "access_token": token,
            "token_type": "bot",
            "scope": "app_mentions:read,chat:write,commands",
            "bot_user_id": workspace.bot_user_id,
            "app_id": "A0001",
            "team": team,
            "enterprise": enterprise,
            "is_enterprise_install": workspace.org_wide,
            "authed_user": {"id": "U0INSTALLER"},
        }
