"""The limiter's Lua scripts, run with EVALSHA and re-sent on NOSCRIPT.

Each script is ``lua/lib.lua`` followed by its own body, so the breaker and bucket arithmetic
exists once. A restarted or failed-over Redis has an empty script cache: the first EVALSHA
then answers NOSCRIPT and we fall back to EVAL, which runs the script and caches it again on
that node (this also covers each master of a Redis Cluster separately).
"""
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
def script(name: str) -> LuaScript:
    lib = (LUA_DIR / "lib.lua").read_text()
    body = (LUA_DIR / f"{name}.lua").read_text()
    return LuaScript(name=name, source=f"{lib}\n{body}")

