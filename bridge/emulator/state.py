"""The emulator's state: one object for the routes and tests, users and agents included.

`Tables` (`tables.py`) holds the data, its lock and its SQLite store; `Conversations` and
`Runs` add the queries and changes of each part; this module adds users and agents.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.emulator.agents import Agent
from bridge.emulator.conversations import Conversations
from bridge.emulator.records import ApiUser
from bridge.emulator.runs import Runs
from bridge.emulator.store import SqliteStore

DEFAULT_API_KEY = "emulator-key"
DEFAULT_ORG_ID = "emulator-org"
DEFAULT_USER_ID = "emulator-user"
OTHER_API_KEY = "emulator-key-2"
OTHER_ORG_ID = "emulator-org-2"
OTHER_USER_ID = "emulator-user-2"


def default_api_keys() -> dict[str, ApiUser]:
    return {
        DEFAULT_API_KEY: ApiUser(DEFAULT_USER_ID, DEFAULT_ORG_ID),
        OTHER_API_KEY: ApiUser(OTHER_USER_ID, OTHER_ORG_ID),
    }


class EmulatorState(Conversations, Runs):
    """Users, conversations, messages, runs, tags and feedback. Tests may read it directly."""

    def __init__(
        self, api_keys: Mapping[str, ApiUser] | None = None, *, store: SqliteStore | None = None
    ) -> None:
        super().__init__(api_keys if api_keys is not None else default_api_keys(), store=store)

    # Users and agents

    def user_for_key(self, api_key: str) -> ApiUser | None:
        with self._lock:
            return self.users.get(api_key)

    def add_user(self, api_key: str, user: ApiUser) -> None:
        with self._lock:
            self.users[api_key] = user

    def register_agent(self, agent: Agent) -> None:
        with self._lock:
            self.agents[agent.metadata.name] = agent

    def agent_map(self) -> dict[str, Agent]:
        with self._lock:
            return dict(self.agents)

    def agent(self, name: str) -> Agent | None:
        with self._lock:
            return self.agents.get(name)
