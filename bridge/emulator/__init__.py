"""A local Engage Smarter API: the contract's endpoints, test agents and fault injection."""

from bridge.emulator.agents import Agent, AgentTurn
from bridge.emulator.app import create_app
from bridge.emulator.faults import FaultPlan, Faults
from bridge.emulator.records import ApiUser
from bridge.emulator.server import ThreadedEmulator, serve
from bridge.emulator.state import (
    DEFAULT_API_KEY,
    DEFAULT_ORG_ID,
    DEFAULT_USER_ID,
    OTHER_API_KEY,
    OTHER_ORG_ID,
    OTHER_USER_ID,
    EmulatorState,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_ORG_ID",
    "DEFAULT_USER_ID",
    "OTHER_API_KEY",
    "OTHER_ORG_ID",
    "OTHER_USER_ID",
    "Agent",
    "AgentTurn",
    "ApiUser",
    "EmulatorState",
    "FaultPlan",
    "Faults",
    "ThreadedEmulator",
    "create_app",
    "serve",
]
