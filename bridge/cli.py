"""The `engage-bridge` command: run, chat, emulator, check and the operator's maintenance verbs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TextIO

from bridge import admin, check, envnames, eventloop, heap
from bridge.config import ALL_ROLES, Role, Settings
from bridge.errors import BridgeError
from bridge.logs import configure_logging
from bridge.redisconn import redacted_url
from bridge.runstate import emulator_file
from bridge.runtime import BridgeRuntime

log = logging.getLogger(__name__)

Command = Callable[[Settings, argparse.Namespace, TextIO], Coroutine[Any, Any, int]]


def parse_roles(text: str) -> set[Role]:
    roles = {part.strip() for part in text.split(",") if part.strip()}
    unknown = roles - set(ALL_ROLES)
    if unknown or not roles:
        raise argparse.ArgumentTypeError(
            f"roles are a comma-separated subset of {','.join(sorted(ALL_ROLES))}"
        )
    return roles  # type: ignore[return-value]  # checked against ALL_ROLES just above


def with_json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--json", action="store_true", help="JSON instead of a table (terminal) or TSV (pipe)"
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engage-bridge",
        description="Engage Smarter AI agents in Slack, Discord, support desks and a playground.",
    )
    parser.add_argument("--debug", action="store_true", help="debug logs and full tracebacks")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="info logs for the maintenance commands and check (default: warnings only)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the bridge (embedded defaults without configuration)")
    run.add_argument(
        "--roles",
        type=parse_roles,
        default=None,
        help="comma-separated subset of http,listeners,workers (default: ENGAGE_BRIDGE_ROLES, all)",
    )
    sub.add_parser("chat", help="chat with the agent in this terminal (each session a thread)")
    emulator = sub.add_parser("emulator", help="serve only the Engage Smarter API emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8090)
    emulator.add_argument(
        "--admin",
        action="store_true",
        help="also serve the unauthenticated /_emulator/ test controls (reset, faults): "
        "for tests and benchmarks only",
    )
    sub.add_parser("check", help="check configuration, credentials, agents, Redis, platforms")

    threads = sub.add_parser("threads", help="the thread -> conversation map")
    threads.set_defaults(json=False)  # `engage-bridge threads` lists them (see main)
    threads_sub = threads.add_subparsers(dest="action", metavar="ACTION")
    with_json(threads_sub.add_parser("list", help="list known threads"))
    with_json(threads_sub.add_parser("show", help="show one thread's record")).add_argument("key")
    threads_sub.add_parser("forget", help="drop a thread's mapping").add_argument("key")

    history = with_json(sub.add_parser("history", help="a thread's conversation"))
    history.add_argument("key", help="thread key, e.g. slack:T123:C456:1712345.0001")

    dead = sub.add_parser("dead-letters", help="turns given up after the last retry")
    dead.set_defaults(json=False)
    dead_sub = dead.add_subparsers(dest="action", metavar="ACTION")
    with_json(dead_sub.add_parser("list", help="list dead letters"))
    replay = dead_sub.add_parser("replay", help="queue dead letters' turns again")
    replay.add_argument("ids", nargs="*", metavar="ID", help="dead letter ids (turn ids)")
    replay.add_argument("--all", action="store_true", help="replay every dead letter")

    sub.add_parser("rebuild-map", help="rebuild the thread map from Engage Smarter conversations")
    return parser


def install_stop_handlers(runtime: BridgeRuntime) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, runtime.stop)


def chat_command(program: str, on_path: str | None) -> str:
    """The `chat` command as this user can type it: `make run` users have no venv on PATH."""
    if on_path and Path(on_path).resolve() == Path(program).resolve():
        return "engage-bridge chat"
    return f"{program} chat" if "/" in program else "engage-bridge chat"


def describe(rt: BridgeRuntime, settings: Settings) -> list[str]:
    """What `run` started, in plain words."""
    lines = [f"engage-bridge is running (roles: {', '.join(sorted(rt.roles))})"]
    if rt.embedded is not None:
        how = "shared with another engage-bridge" if rt.embedded.reused else "started"
        lines.append(
            f"  Redis:          embedded redis-server ({how}) at {rt.embedded.socket_path}, "
            f"data in {settings.data_dir.resolve()}"
        )
    elif rt.redis_url:
        lines.append(f"  Redis:          {redacted_url(rt.redis_url)}")
    if rt.emulator_url:
        from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID

        lines.append(
            f"  Engage Smarter: built-in emulator at {rt.emulator_url} "
            f"(API key {DEFAULT_API_KEY}, org {DEFAULT_ORG_ID}; set ENGAGE_SMARTER_API_KEY "
            "for the real API)"
        )
    else:
        lines.append(f"  Engage Smarter: {settings.engage_api_url}")
    # The console relay is plumbing for `chat`, not a platform someone switched on.
    names = [adapter.name for adapter in rt.adapters if adapter.name != "console"]
    lines.append(f"  Adapters:       {', '.join(names) or 'none enabled'}")
    if rt.http_url:
        if "web" in names and "http" in rt.roles:
            lines.append(f"  Playground:     {rt.http_url}/playground")
            lines.append(f"  Operator view:  {rt.http_url}/operator")
        lines.append(f"  Health:         {rt.http_url}/healthz   {rt.http_url}/readyz")
        lines.append(f"  Metrics:        {rt.http_url}/metrics")
    chat = chat_command(sys.argv[0], shutil.which("engage-bridge"))
    if "web" in names and "http" in rt.roles:
        lines.append(f"Try it: open the playground in a browser, or run `{chat}`.")
    else:
        lines.append(f"Try it: run `{chat}` in another terminal.")
    lines.append("Stop with Ctrl+C.")
    return lines


async def cmd_run(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    roles = args.roles if args.roles is not None else settings.roles
    async with BridgeRuntime(settings, roles=roles, emulator_file=emulator_file(settings)) as rt:
        install_stop_handlers(rt)
        print("\n".join(describe(rt, settings)), file=out, flush=True)
        heap.settle(settings.gc_young_threshold)
        await rt.wait()
    print("engage-bridge stopped.", file=out, flush=True)
    return 0


async def cmd_chat(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from adapters.console import HELP, ConsoleAdapter

    # The data dir, Redis and emulator file of `run` (one place for every thread), its own
    # HTTP port (a `run` may hold 8080). Replies reach this terminal through Redis whichever
    # process's worker answers (adapters/console.py), and this process's workers can answer
    # any thread: it builds the enabled adapters too, but listens only to the terminal.
    chat_settings = settings.model_copy(update={"http_port": 0, "http_host": "127.0.0.1"})
    console = ConsoleAdapter(out=out)
    roles: set[Role] = {"listeners", "workers"}
    async with BridgeRuntime(
        chat_settings,
        also=[console],
        listen={console.name},
        roles=roles,
        emulator_file=emulator_file(settings),
        redis_dies_with_us=False,
    ) as rt:
        install_stop_handlers(rt)
        where = (
            f"the built-in emulator ({rt.emulator_url})" if rt.emulator_url else "Engage Smarter"
        )
        thread = console.thread
        agent = settings.file.routing.agent_for(thread.workspace, thread.channel)
        print(f"Chatting with {agent} on {where}. Thread {thread}.", file=out)
        print(HELP, file=out, flush=True)
        await rt.wait()
    return 0


async def cmd_emulator(settings: Settings, args: argparse.Namespace, out: TextIO) -> int:
    from bridge.emulator import DEFAULT_API_KEY, DEFAULT_ORG_ID, serve

    print(
        f"Engage Smarter emulator on http://{args.host}:{args.port} "
        f"(API key {DEFAULT_API_KEY}, org {DEFAULT_ORG_ID}). Stop with Ctrl+C.",
        file=out,
        flush=True,
    )
    await serve(host=args.host, port=args.port, admin=args.admin)
    return 0


COMMANDS: dict[str, Command] = {
    "run": cmd_run,
    "chat": cmd_chat,
    "emulator": cmd_emulator,
    "check": check.cmd_check,
    "threads": admin.cmd_threads,
    "history": admin.cmd_history,
    "dead-letters": admin.cmd_dead_letters,
    "rebuild-map": admin.cmd_rebuild_map,
}


_LONG_RUNNING = frozenset({"run", "chat"})
# Commands whose output is their result: routine log lines would only be noise around it.
_QUIET_COMMANDS = frozenset({"check", "threads", "history", "dead-letters", "rebuild-map"})


def log_level(args: argparse.Namespace) -> dict[str, str]:
    """--debug wins; maintenance commands log warnings only unless -v."""
    if args.debug:
        return {"log_level": "DEBUG"}
    if args.command in _QUIET_COMMANDS:
        return {"log_level": "INFO" if args.verbose else "WARNING"}
    return {"log_level": "INFO"} if args.verbose else {}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "action", "") is None:  # `threads`, `dead-letters` alone: their list
        args.action = "list"
    out = out or sys.stdout
    try:
        settings = Settings.load(**log_level(args))
        if args.command == "chat" and "log_level" not in settings.model_fields_set:
            # The terminal is chat's user interface: routine log lines would interleave with it.
            settings = settings.model_copy(update={"log_level": "WARNING"})
        configure_logging(settings)
        if args.command != "check":  # check reports them as failures instead
            for name, closest in settings.unknown_variables():
                log.warning("%s", envnames.describe(name, closest))
        # The long-running commands get uvloop; the others are short and need no fast loop.
        fast = settings.uvloop and args.command in _LONG_RUNNING
        return eventloop.run(COMMANDS[args.command](settings, args, out), use_uvloop=fast)
    except KeyboardInterrupt:
        return 130
    except (BridgeError, OSError) as exc:
        if args.debug:
            raise
        print(f"engage-bridge: error: {exc}", file=sys.stderr, flush=True)
        return 1
