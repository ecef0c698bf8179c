"""The limiter's Lua scripts, run with EVALSHA and re-sent on NOSCRIPT.

Each script is a configuration preamble (the ``BK`` and ``CB`` Lua tables, so constant settings
never travel with a call), ``lua/lib.lua``, then its own body: the breaker and bucket arithmetic
exists once. One configuration gives one script text and one SHA. A restarted or failed-over
Redis has an empty script cache: the first EVALSHA then answers NOSCRIPT and we fall back to
EVAL, which runs the script and caches it again on that node (each master of a Redis Cluster
separately).

``Runner`` is how the per-request scripts (acquire, record) go out: on a plain ``redis.Redis``
it sends EVALSHA on connections of its own, skipping redis-py's generic command path, which cost
as much Python time per call as the loopback round trip itself (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import redis
from redis.exceptions import NoScriptError

LUA_DIR = Path(__file__).with_name("lua")


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str = field(repr=False)
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest())

    def __call__(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)


@cache
def _read(name: str) -> str:
    return (LUA_DIR / f"{name}.lua").read_text()


@cache
def script(name: str, preamble: str) -> LuaScript:
    return LuaScript(name=name, source=f"{preamble}\n{_read('lib')}\n{_read(name)}")


def lua_table(name: str, values: dict[str, float]) -> str:
    """``local NAME = {k = v, ...}`` with numbers written exactly (repr round-trips a float)."""
    fields = ", ".join(f"{key} = {float(value)!r}" for key, value in values.items())
    return f"local {name} = {{{fields}}}"


class Runner:
    """Runs scripts for one client, the lean way when the client allows it.

    redis-py's ``execute_command`` checks a connection out of the pool (a lock, a ``poll()`` on
    the socket, observability counters), wraps the call in closures for its retry and dispatches
    events on release: for a one-round-trip EVALSHA that is as much time as the round trip. For
    a plain ``redis.Redis`` (no client-side cache, not a single-connection client) this keeps its
    own idle connections, made with the client pool's class and settings (socket timeouts,
    retry, health checks), and does send + read on one of them. Semantics kept: a connection
    that fails is disconnected and the call retried per the client's ``Retry`` (one immediate
    retry for ``limiter_client``), NOSCRIPT re-sends the source with EVAL, a connection is never
    shared by two threads (``list.pop``/``append`` are atomic), and a forked child never uses
    its parent's sockets. Cluster and other clients take redis-py's path (``LuaScript.__call__``).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        pool = getattr(client, "connection_pool", None)
        self._pool = pool
        self._lean = (isinstance(client, redis.Redis) and pool is not None
                      and getattr(client, "connection", None) is None and getattr(pool, "cache", None) is None)
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def __call__(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        if not self._lean:
            return script(self.client, keys, args)
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._idle, self._pid = [], os.getpid()
        idle = self._idle
        try:
            conn = idle.pop()
        except IndexError:
            conn = self._pool.connection_class(**self._pool.connection_kwargs)
        try:
            command = conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args)

            def send() -> Any:
                conn.send_packed_command(command)
                return conn.read_response()

            return conn.retry.call_with_retry(send, lambda _error: conn.disconnect())
        except NoScriptError:
            return self.client.eval(script.source, len(keys), *keys, *args)
        finally:
            idle.append(conn)

    def close(self) -> None:
        """Disconnect the idle connections (tests; a process otherwise keeps them for its life)."""
        while self._idle:
            self._idle.pop().disconnect()


class Scripts:
    """The four scripts of one guard configuration."""

    def __init__(self, preamble: str) -> None:
        self.acquire = script("acquire", preamble)
        self.record = script("record", preamble)
        self.breaker = script("breaker", preamble)
        self.status = script("status", preamble)

