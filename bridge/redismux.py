"""Auto-pipelining for a single Redis: concurrent commands share one connection and one write.

redis-py sends each command on a pooled connection of its own: a pool checkout and release (a
condition, a lock, a timeout), a socket write, a `wait_for` task and a read timeout, per command:
~55 µs of CPU per command with 200 callers (BENCHMARKS.md, "Redis per command"). Here the simple
commands a turn sends (its Lua scripts above all) go out as node-redis and ioredis send them:
on one shared connection, the first command of a loop iteration at once and the ones after it in
the same iteration together in one write; the replies, which Redis sends in order, are handed to
their callers in that order by one reader.

What stays as redis-py does it:
- errors: a command's error reply fails that command only (`NoScriptError` too, so a
  registered script reloads itself); a lost connection fails every command sent and not yet
  answered with `ConnectionError`, and the next command reconnects; no command is retried
  (the bridge's pool retries none either);
- a hung Redis: when no reply arrives for `socket_timeout` while commands wait, every waiting
  command fails with `TimeoutError` and the connection is dropped;
- replies go through the client's response callbacks, as `Redis.parse_response` does (a
  command asking for undecoded replies takes the pool);
- stream reads that may block (`BLOCKING_READS`) each go on a connection of their own, kept
  for the next one; a read cancelled or failed closes its connection (as redis-py's pool does);
- everything else (other blocking commands, pipelines and transactions, pub/sub, commands that
  change a connection's state) uses the client's pool, unchanged. Only the commands in `MUXED`
  share the connection: none of them blocks or changes the connection's state.

A Redis Cluster keeps redis-py's own client (`bridge.redisconn.connect_redis`).
`tests/test_redismux.py` fails when the redis-py code this mirrors changes.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import Any

from redis._parsers.response_callbacks import _get_response_callback
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import ScriptTextT as ScriptT

# redis-py's option names (redis._defaults), spelled here to keep to its public surface.
_NEVER_DECODE = "NEVER_DECODE"
_EMPTY_RESPONSE = "EMPTY_RESPONSE"

# Commands that neither block the connection nor change its state, by redis-py's spelling of
# the command name (args[0]). Blocking reads (XREADGROUP BLOCK, BLPOP, WAIT), MULTI/EXEC/WATCH,
# SELECT, CLIENT, SUBSCRIBE, MONITOR and anything not listed here take a pooled connection.
MUXED = frozenset({
    "EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO", "SCRIPT LOAD", "SCRIPT EXISTS",
    "PING", "ECHO", "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETDEL", "GETEX", "GETSET", "MGET",
    "MSET", "INCR", "INCRBY", "DECR", "DECRBY", "APPEND", "STRLEN", "DEL", "UNLINK", "EXISTS",
    "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST", "TTL", "PTTL", "TYPE", "HGET", "HSET",
    "HSETNX", "HMGET", "HMSET", "HGETALL", "HDEL", "HEXISTS", "HINCRBY", "HLEN", "HKEYS", "HVALS",
    "LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE", "LLEN", "LREM", "LTRIM", "LINDEX", "SADD", "SREM",
    "SMEMBERS", "SISMEMBER", "SCARD", "ZADD", "ZREM", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE",
    "ZCARD", "ZSCORE", "ZINCRBY", "XADD", "XACK", "XDEL", "XLEN", "XRANGE", "XREVRANGE", "XPENDING",
    "XCLAIM", "XAUTOCLAIM", "XTRIM",
})  # fmt: skip


# Reads that may block in Redis until entries arrive (the workers' XREADGROUP ... BLOCK): each
# goes on a connection of its own, kept for the next such read. Taken from redis-py's pool
# instead, one costs ~120 us more CPU (checkout, a `wait_for` task, timeouts; BENCHMARKS.md,
# "Fixed CPU and CPU per turn at 200/50"), and a turn's worker reads once per entry when the
# entries come one by one.
BLOCKING_READS = frozenset({"XREADGROUP", "XREAD"})
# Readers kept between reads: one per worker loop (and console printer) of the process.
_IDLE_READERS = 4


class _Wire:
    """One connection carrying commands in order; what it sent and not yet heard back about."""

    def __init__(self, connection: AbstractConnection, timeout: float | None) -> None:
        self.connection = connection
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        # A future per command sent or about to be, oldest first.
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.outgoing: list[bytes] = []
        self._batching = False  # a _flush is scheduled: commands wait in `outgoing` for it
        self.failure: BaseException | None = None
        self.progress = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[None] | None = self.loop.create_task(self._read())

    def send(self, packed: list[bytes]) -> asyncio.Future[Any]:
        """Queue one packed command; its future gets the reply (or the error reply)."""
        return self.send_many(packed, 1)[0]

    def send_many(self, packed: list[bytes], replies: int) -> list[asyncio.Future[Any]]:
        """Queue packed commands written back to back (a MULTI ... EXEC block stays whole)."""
        futures: list[asyncio.Future[Any]] = [self.loop.create_future() for _ in range(replies)]
        if self.failure is not None:
            for future in futures:
                future.set_exception(type(self.failure)(*self.failure.args))
            return futures
        if not self.waiting:
            self.progress = self.loop.time()
            if self._timer is None and self.timeout:
                self._timer = self.loop.call_at(self.progress + self.timeout, self._check)
        self.waiting.extend(futures)
        if self._batching:
            self.outgoing.extend(packed)
        else:
            # The first command of a loop iteration is written at once: on a saturated loop a
            # write left to the next iteration costs its caller a whole iteration (20-40 ms).
            # The commands after it in this iteration go out together, in one write, at _flush.
            self._batching = True
            self.loop.call_soon(self._flush)
            self._write(packed)
        return futures

    def _flush(self) -> None:
        self._batching = False
        if self.outgoing and self.failure is None:
            outgoing, self.outgoing = self.outgoing, []
            self._write(outgoing)

    def _write(self, chunks: list[bytes]) -> None:
        writer = self.connection._writer
        try:
            if writer is None or writer.transport.is_closing():
                raise RedisConnectionError("Connection closed by the server before write")
            writer.writelines(chunks)
        except (OSError, RedisConnectionError) as exc:
            self.fail(RedisConnectionError(f"Error while writing to socket: {exc}"))

    async def _read(self) -> None:
        parser: Any = self.connection._parser
        try:
            while True:
                reply = await parser.read_response()
                if not self.waiting:
                    raise RedisConnectionError("Redis sent a reply nobody asked for")
                future = self.waiting.popleft()
                self.progress = self.loop.time()
                if future.done():  # its caller was cancelled: the reply is dropped
                    continue
                if isinstance(reply, ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except asyncio.CancelledError:
            self.fail(RedisConnectionError("Connection closed by the client"))
            raise
        except RedisConnectionError as exc:
            self.fail(exc)
        except (OSError, Exception) as exc:  # a parser's error: the stream is unusable
            self.fail(RedisConnectionError(f"Error while reading from Redis: {exc!r}"))

    def _check(self) -> None:
        self._timer = None
        if not self.waiting or self.failure is not None:
            return
        due = self.progress + (self.timeout or 0.0)
        if self.loop.time() < due:
            self._timer = self.loop.call_at(due, self._check)
            return
        host = self.connection._host_error()
        self.fail(RedisTimeoutError(f"Timeout reading from {host}"))

    def fail(self, error: BaseException) -> None:
        """Fail every command still waiting and drop the connection (once)."""
        if self.failure is not None:
            return
        self.failure = error
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self.waiting = self.waiting, deque()
        for future in waiting:
            if not future.done():  # an exception each: every caller's traceback is its own
                future.set_exception(type(error)(*error.args))
        self.outgoing = []
        self.connection._force_disconnect()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()

    async def aclose(self) -> None:
        self.fail(RedisConnectionError("Connection closed by the client"))
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


class MuxRedis(Redis):
    """A single-Redis client that auto-pipelines the commands in `MUXED` (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wire: _Wire | None = None
        self._connecting: asyncio.Future[_Wire] | None = None
        self._idle_readers: list[_Wire] = []
        self._readers: set[_Wire] = set()
        self._scripts: dict[str, ScriptT] = {}  # by sha: what every new connection loads first

    # redis-py's types give the asyncio client the sync client's `register_script`.
    def register_script(self, script: ScriptT) -> AsyncScript:  # type: ignore[override]
        """redis-py's script, loaded on the shared connection now (if connected) and on every
        new one before anything else goes out on it (a connection's commands run in order, so
        each call of the script finds it). redis-py loads a script when a call meets NOSCRIPT:
        on a fresh Redis every call of a burst did (NOSCRIPT, SCRIPT LOAD, the call again:
        three round trips; the first 200 ACCEPTs at 600/200, BENCHMARKS.md "The first sign at
        600/200")."""
        registered = AsyncScript(self, script)  # what redis-py's register_script returns
        if registered.sha not in self._scripts:
            self._scripts[registered.sha] = script
            wire = self._wire
            if wire is not None and wire.failure is None:
                _load(wire, [script])
        return registered

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command_name = args[0]
        if _NEVER_DECODE in options:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        if command_name in MUXED:
            wire, reader = await self.wire(), False
        elif command_name in BLOCKING_READS:
            wire, reader = await self._reader(), True
        else:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        future = wire.send(wire.connection.pack_command(*args))
        try:
            response = await future
        except ResponseError:
            if reader:
                self._done_reading(wire)
            if _EMPTY_RESPONSE in options:
                return options[_EMPTY_RESPONSE]
            raise
        except BaseException:
            if reader:  # cancelled, or the connection failed: a read may still wait in Redis
                self._drop_reader(wire)
            raise
        if reader:
            self._done_reading(wire)
        return await self._parsed(wire.connection, command_name, response, options)

    async def _reader(self) -> _Wire:
        """An idle reader's connection, or a new one."""
        while self._idle_readers:
            wire = self._idle_readers.pop()
            if wire.failure is None:
                return wire
            self._drop_reader(wire)
        wire = await self._new_wire()
        self._readers.add(wire)
        return wire

    def _done_reading(self, wire: _Wire) -> None:
        if wire.failure is None and not wire.waiting and len(self._idle_readers) < _IDLE_READERS:
            self._idle_readers.append(wire)
        else:
            self._drop_reader(wire)

    def _drop_reader(self, wire: _Wire) -> None:
        """Close a reader's connection: Redis ends a read still blocked on it."""
        self._readers.discard(wire)
        wire.fail(RedisConnectionError("Connection closed by the client"))

    async def _parsed(
        self,
        connection: AbstractConnection,
        command_name: Any,
        response: Any,
        options: dict[str, Any],
    ) -> Any:
        # As redis-py's Redis.parse_response after its read (NEVER_DECODE takes the pool).
        options.pop(_EMPTY_RESPONSE, None)
        options.pop("keys", None)
        if connection._resp2_fallback:
            callback = _get_response_callback(self.response_callbacks, command_name, connection)
        else:
            callback = self.response_callbacks.get(command_name)
        if callback is None:
            return response
        value = callback(response, **options)
        return await value if inspect.isawaitable(value) else value

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return MuxPipeline(self, transaction, shard_hint)

    async def wire(self) -> _Wire:
        """The shared connection, connected."""
        wire = self._wire
        if wire is None or wire.failure is not None:
            wire = await self._connect()
        return wire

    async def _connect(self) -> _Wire:
        # One attempt at a time, shared by every command that waits for it: a Redis that does
        # not answer costs each of them one connect timeout, not one per command before it.
        attempt = self._connecting
        if attempt is None or attempt.done():
            attempt = self._connecting = asyncio.ensure_future(self._open())
        return await asyncio.shield(attempt)

    async def _open(self) -> _Wire:
        wire = self._wire
        if wire is not None and wire.failure is None:
            return wire
        wire = self._wire = await self._new_wire()
        _load(wire, list(self._scripts.values()))
        return wire

    async def _new_wire(self) -> _Wire:
        pool: ConnectionPool = self.connection_pool
        connection = pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.connect()
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        timeout = connection.socket_timeout
        return _Wire(connection, float(timeout) if timeout else None)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        attempt, self._connecting = self._connecting, None
        if attempt is not None and not attempt.done():
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
        wires = [self._wire, *self._readers]
        self._wire, self._readers, self._idle_readers = None, set(), []
        for wire in wires:
            if wire is not None:
                await wire.aclose()
                await wire.connection.disconnect()
        await super().aclose(close_connection_pool)


class MuxPipeline(Pipeline):
    """A transaction (MULTI ... EXEC, no WATCH) of `MUXED` commands goes out on the shared
    connection as one block; redis-py's own transaction code reads and checks its replies.
    Anything else (WATCH, an explicit MULTI, scripts to load, no transaction) takes the pool."""

    def __init__(self, client: MuxRedis, transaction: bool, shard_hint: str | None) -> None:
        super().__init__(client.connection_pool, client.response_callbacks, transaction, shard_hint)
        self._client = client

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if (
            not stack
            or not self.is_transaction
            or self.watching
            or self.explicit_transaction
            or self.scripts
            or self.connection is not None
            or any(args[0] not in MUXED or _NEVER_DECODE in options for args, options in stack)
        ):
            return await super().execute(raise_on_error)
        try:
            batch: Any = _Batch(await self._client.wire(), stack)
            return await self._execute_transaction(batch, stack, raise_on_error)  # type: ignore[no-any-return]
        finally:
            await self.reset()  # type: ignore[no-untyped-call]


class _Batch:
    """What redis-py's `Pipeline._execute_transaction` needs of a connection, on the wire: the
    block is sent whole and each `read_response` is the next of its replies."""

    def __init__(self, wire: _Wire, stack: list[Any]) -> None:
        self._wire = wire
        # MULTI, the commands that expect a reply, EXEC.
        self._count = 2 + sum(_EMPTY_RESPONSE not in options for _, options in stack)
        self._replies: deque[asyncio.Future[Any]] = deque()
        self._resp2_fallback = wire.connection._resp2_fallback

    def pack_commands(self, commands: list[Any]) -> list[bytes]:
        return self._wire.connection.pack_commands(commands)

    async def send_packed_command(self, packed: list[bytes], check_health: bool = True) -> None:
        futures = self._wire.send_many(packed, self._count)
        for future in futures:
            # redis-py stops reading a block at its first error: the futures of the replies it
            # never asks for would log "Future exception was never retrieved" when collected.
            future.add_done_callback(_retrieved)
        self._replies.extend(futures)

    async def read_response(self, disable_decoding: bool = False, **_: Any) -> Any:
        return await self._replies.popleft()

    async def disconnect(self, nowait: bool = False) -> None:
        # A caller cancelled mid-block: the reader still takes the block's replies, in order.
        for future in self._replies:
            future.cancel()


def _load(wire: _Wire, scripts: list[ScriptT]) -> None:
    """SCRIPT LOAD each, not waited for: a load that fails leaves the script to redis-py's own
    load on NOSCRIPT, which reports the error to its caller."""
    for script in scripts:
        wire.send(wire.connection.pack_command("SCRIPT LOAD", script)).add_done_callback(_retrieved)


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
