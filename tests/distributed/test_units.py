"""Unit tests of our own logic (no Redis): codec, error mapping, keys, import guard."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
import redis.exceptions as redis_errors
from bullmq.custom_errors import UnrecoverableError

from flowcraft import DEFAULT_ACTION, FILTER_FAILED, ContextKey
from flowcraft.distributed import BackendError, CodecError, decode, encode
from flowcraft.distributed.keys import Keys
from flowcraft.distributed.queue import ERROR_MAP, map_backend_error, map_backend_errors
from flowcraft.engine.jobs import job_id
from flowcraft.engine.recording import RecordingContext

VALUES = [
    None, True, 3, 2.5, "text", "ünï", [1, "a", None], {"a": {"b": [1, 2]}},
    dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC), dt.datetime(2024, 5, 1, 12, 30), dt.date(2024, 5, 1),
    dt.time(1, 2, 3), dt.timedelta(days=1, seconds=5, microseconds=7), Decimal("1.10"), uuid.UUID(int=7),
    b"\x00\xff", bytearray(b"ab"), {1, 2}, frozenset({"x"}), (1, (2, 3)), {1: "one", (2, 3): "pair"},
    {"__fc__": "looks tagged", "v": 1}, DEFAULT_ACTION, FILTER_FAILED, [{(1, 2)}],
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ + str(i) for i, v in enumerate(VALUES)])
def test_codec_round_trips(value: object) -> None:
    decoded = decode(encode(value))
    assert decoded == value and type(decoded) is type(value)
    if value is DEFAULT_ACTION or value is FILTER_FAILED:
        assert decoded is value


def test_codec_error_names_key_and_type() -> None:
    class Opaque:
        pass

    with pytest.raises(CodecError, match=r"'user'.*Opaque.*\[0\]\['x'\]") as info:
        encode([{"x": Opaque()}], key="user")
    assert info.value.key == "user" and info.value.type_name.endswith("Opaque")


def test_codec_never_unpickles() -> None:
    with pytest.raises(CodecError, match="not valid flowcraft codec data"):
        decode(b"\x80\x04K\x01.", key="k")  # a pickle
    with pytest.raises(CodecError, match="Unknown codec tag 'pickle'"):
        decode('{"__fc__": "pickle", "v": "gASVAAAA"}')


def test_context_key_subclass_travels_as_text() -> None:
    assert decode(encode(ContextKey("k"))) == "k"


@pytest.mark.parametrize(("source", "target"), ERROR_MAP, ids=[s.__name__ for s, _ in ERROR_MAP])
def test_every_mapped_error_is_mapped(source: type[BaseException], target: type[BackendError]) -> None:
    original = source("boom") if source is not UnrecoverableError else source("boom")
    with pytest.raises(target) as info, map_backend_errors():
        raise original
    assert type(info.value) is target and info.value.__cause__ is original
    assert map_backend_error(original).__class__ is target


def test_unmapped_errors_pass_through() -> None:
    error = KeyError("x")
    assert map_backend_error(error) is error
    assert isinstance(map_backend_error(redis_errors.AuthenticationError("no")), BackendError)


def test_recording_context_records_only_changes() -> None:
    import asyncio

    async def main() -> tuple[dict[str, str], list[str], dict[str, object]]:
        ctx = RecordingContext({"a": encode(1), "b": encode([1]), "c": encode("x")})
        await ctx.set("a", 2)
        await ctx.delete("c")
        assert await ctx.get("b") == [1] and await ctx.has("b") and not await ctx.has("c")
        sets, deletes = ctx.delta()
        return sets, deletes, ctx.to_dict()

    sets, deletes, snapshot = asyncio.run(main())
    assert sets == {"a": "2"} and deletes == ["c"] and snapshot == {"a": 2, "b": [1]}


def test_keys_share_the_run_hash_tag() -> None:
    rk = Keys("p").run("r1")
    assert all("{r1}" in key for key in (*rk.all_fixed, rk.join("n", 2), rk.events))
    assert job_id("r1", "sub:node", 3) == "r1:sub:node:3"
    with pytest.raises(ValueError, match="prefix"):
        Keys("bad{prefix}")


def test_import_guard_names_the_extra() -> None:
    code = "import sys; sys.modules['bullmq'] = None; import flowcraft.distributed"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "pip install 'flowcraft-py[redis]'" in proc.stderr


def test_run_events_round_trip_through_the_event_codec() -> None:
    from flowcraft import WorkflowError
    from flowcraft.distributed import RemoteNodeError
    from flowcraft.engine.eventlog import decode_event, encode_event
    from flowcraft.events import ContextChanged, NodeFailed, NodeFinished, RetryAttempt, RunStarted

    started = RunStarted(run_id="r", time=1.5, flow="f", params={"n": (1, 2)})
    assert decode_event(encode_event(started)) == started
    finished = NodeFinished(run_id="r", time=2.0, node_id="a", node_name="A", action=DEFAULT_ACTION, duration=0.1)
    assert decode_event(encode_event(finished)) == finished
    changed = ContextChanged(run_id="r", time=2.0, node_id="a", node_name="A", keys_set=("x",), keys_deleted=())
    assert decode_event(encode_event(changed)) == changed

    error = WorkflowError("Node a failed in exec: boom", "a", "exec", ValueError("boom"))
    failed = decode_event(encode_event(
        NodeFailed(run_id="r", time=3.0, node_id="a", node_name="A", error=error, phase="exec", duration=0.2)
    ))  # fmt: skip
    assert isinstance(failed, NodeFailed) and isinstance(failed.error, WorkflowError)
    assert (failed.error.node_name, failed.error.phase, str(failed.error)) == ("a", "exec", str(error))
    assert isinstance(failed.error.original_error, RemoteNodeError)
    assert failed.error.original_error.type_name == "ValueError"

    retry = decode_event(encode_event(RetryAttempt(
        run_id="r", time=3.0, node_id=None, node_name="A", attempt=1, max_attempts=3, error=KeyError("k"), wait=0.0
    )))  # fmt: skip
    assert isinstance(retry, RetryAttempt) and isinstance(retry.error, RemoteNodeError)
    assert retry.error.type_name == "KeyError" and retry.node_id is None

    odd = decode_event(encode_event(
        NodeFinished(run_id="r", time=2.0, node_id="a", node_name="A", action=object(), duration=0.1)
    ))  # fmt: skip
    assert isinstance(odd, NodeFinished) and str(odd.action).startswith("<object object")  # sent as its repr

    assert decode_event('{"t": "NodeFromTheFuture", "run_id": "r", "time": 1}') is None
    assert decode_event('{"t": "NodeSkipped", "run_id": "r"}') is None  # missing fields
    grown = decode_event('{"t":"RunStarted","run_id":"r","time":1,"flow":"f","params":{},"new_field":1}')
    assert isinstance(grown, RunStarted)  # fields added by newer writers are dropped
    with pytest.raises(CodecError):
        decode_event("not json")


def test_run_keys_include_the_event_stream() -> None:
    rk = Keys("p").run("abc")
    assert rk.stream == "p:run:{abc}:stream"


def _progress_line(event: object) -> str:
    import io

    from flowcraft.cli.progress import ProgressDisplay
    from flowcraft.engine.eventlog import decode_event, encode_event

    out = io.StringIO()
    ProgressDisplay(out, live=False)(decode_event(encode_event(event)))
    return out.getvalue().split("] ", 1)[1].rstrip("\n")


def test_distributed_progress_names_the_real_error_type_once_and_the_message_once() -> None:
    from flowcraft import WorkflowError
    from flowcraft.distributed import CodecError
    from flowcraft.events import NodeFailed, RetryAttempt

    def failed(error: BaseException, phase: str = "exec") -> NodeFailed:
        return NodeFailed(
            run_id="r", time=1.0, node_id="boom", node_name="Fail", error=error, phase=phase, duration=0.1
        )

    wrapped = WorkflowError(
        "Node 'boom' (Fail) failed in exec: ValueError: bad input", "boom", "exec", ValueError("bad input")
    )
    assert _progress_line(failed(wrapped)) == "FAILED   boom in exec: ValueError: bad input"

    # a CodecError's type_name is the type of the value it could not encode, not an error type
    codec = CodecError(
        "Context key 'handle' holds a builtins.object, which cannot be sent", key="handle", type_name="builtins.object"
    )
    line = _progress_line(failed(codec, "post"))
    assert (
        line == "FAILED   boom in post: CodecError: Context key 'handle' holds a builtins.object, which cannot be sent"
    )

    retry = RetryAttempt(
        run_id="r", time=1.0, node_id="boom", node_name="Fail", attempt=1, max_attempts=2, error=KeyError("k"), wait=0.0
    )
    assert _progress_line(retry) == "retry    boom attempt 1/2 failed: KeyError: 'k'"
