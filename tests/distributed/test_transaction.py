"""`transaction`: the MULTI/EXEC that a worker's commit and completion go in, packed and
read outside redis-py's pipeline. On the real Redis: the answers as redis-py's transaction
pipeline gives them (an error in its place), a refused command refusing the whole
transaction, answers larger than one read, and every kind of argument."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.exceptions as redis_errors

from flowcraft.distributed.connection import connect, transaction

from .conftest import Space


def run(url: str, *steps: Any) -> list[Any]:
    """Each step (a list of commands) through `transaction` on one client, then the same
    through redis-py's transaction pipeline: both answers, in order."""

    async def main() -> list[Any]:
        client = connect(url)
        out: list[Any] = []
        try:
            for commands in steps:
                out.append(await transaction(client, commands))
                async with client.pipeline(transaction=True) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    out.append(await pipe.execute(raise_on_error=False))
        finally:
            await client.aclose()
        return out

    return asyncio.run(main())


def same(ours: list[Any], theirs: list[Any]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        if isinstance(b, BaseException):
            assert type(a) is type(b) and str(a) == str(b)
        elif b is True:  # redis-py's response callback of SET; scripts' answers have none
            assert a == "OK"
        else:
            assert a == b


def test_answers_come_in_place_with_errors_as_exceptions(space: Space) -> None:
    key = f"{space.prefix}:t"
    big = "é" * 300_000  # answers larger than one read from the socket
    steps = [
        [("SET", key, "1"), ("EVALSHA", "0" * 40, 0), ("INCR", key), ("HSET", key, "f", "v"), ("GET", key)],
        [("SET", key, big), ("GET", key), ("STRLEN", key), ("DEL", key)],
        [("EVAL", "return {ARGV[1], tonumber(ARGV[2]), ARGV[3]}", 0, b"\x00a", 42, 1.5)],
        [("EVAL", "return redis.error_reply('NOPE no')", 0), ("ECHO", "after")],
    ]
    answers = run(space.url, *steps)
    for ours, theirs in zip(answers[::2], answers[1::2], strict=True):
        same(ours, theirs)
    assert isinstance(answers[0][1], redis_errors.NoScriptError)
    assert answers[0][2] == 2 and isinstance(answers[0][3], redis_errors.ResponseError)  # WRONGTYPE: run, failed
    assert answers[2][1] == big and answers[2][2] == len(big.encode())
    assert answers[6][1] == "after"


def test_a_command_redis_refuses_refuses_the_whole_transaction(space: Space) -> None:
    key = f"{space.prefix}:t"

    async def main() -> None:
        client = connect(space.url)
        try:
            with pytest.raises(redis_errors.ResponseError, match="wrong number of arguments"):
                await transaction(client, [("SET", key, "1"), ("GET",), ("SET", key, "2")])
            assert await client.get(key) is None  # nothing ran
            assert await transaction(client, [("SET", key, "3"), ("GET", key)]) == ["OK", "3"]  # no response callbacks
        finally:
            await client.delete(key)
            await client.aclose()

    asyncio.run(main())


def test_a_bool_argument_is_refused_as_redis_py_refuses_it(space: Space) -> None:
    async def main() -> None:
        client = connect(space.url)
        try:
            with pytest.raises(redis.DataError):
                await transaction(client, [("SET", f"{space.prefix}:t", True)])
        finally:
            await client.aclose()

    asyncio.run(main())
