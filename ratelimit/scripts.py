"""The limiter's Lua scripts, run with EVALSHA and re-sent on NOSCRIPT.

Each script is a configuration preamble (the ``BK`` and ``CB`` Lua tables, so constant settings
never travel with a call), ``lua/lib.lua``, then its own body: the breaker and bucket arithmetic
exists once. One configuration gives one script text and one SHA. A restarted or failed-over
Redis has an empty script cache: the first EVALSHA then answers NOSCRIPT and we fall back to
EVAL, which runs the script and caches it again on that node (each master of a Redis Cluster
separately)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

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


class Scripts:
    """The four scripts of one guard configuration."""

    def __init__(self, preamble: str) -> None:
        self.acquire = script("acquire", preamble)
        self.record = script("record", preamble)
        self.breaker = script("breaker", preamble)
        self.status = script("status", preamble)

