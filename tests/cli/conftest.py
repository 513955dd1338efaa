"""Fixtures of the command-line tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from .helpers import REDIS_URL


@pytest.fixture
def space() -> Iterator[list[str]]:
    """Redis options for one test: the test Redis, a private queue and key prefix (deleted afterwards)."""
    import redis  # the redis extra is part of the test install: a missing one fails here

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"these tests need a real Redis at {REDIS_URL} (set FLOWCRAFT_TEST_REDIS_URL): {error}")
    tag = uuid.uuid4().hex[:10]
    options = ["--redis", REDIS_URL, "--queue", f"cliq{tag}", "--prefix", f"clip{tag}"]
    yield options
    keys = list(client.scan_iter(match=f"clip{tag}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
