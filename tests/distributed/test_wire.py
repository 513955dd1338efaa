"""The wire format's pure parts (no Redis): queue job ids without ``:`` (Node BullMQ 5
refuses them), their inverse, queue names per shard and cluster, the shard of a job."""

from __future__ import annotations

import dist_nodes as d
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowcraft.distributed import DistributedExecutor, Worker
from flowcraft.distributed.keys import WIRE_VERSION, engine_job_id, queue_names, shard_of, wire_job_id
from flowcraft.engine.jobs import job_id

RUN_IDS = st.text(min_size=1).filter(lambda s: not any(c in s for c in ":{}"))


@given(run_id=RUN_IDS, node_id=st.text(min_size=1), visit=st.integers(min_value=1, max_value=10**6))
def test_queue_job_ids_never_contain_a_colon_and_map_back(run_id: str, node_id: str, visit: int) -> None:
    engine = job_id(run_id, node_id, visit)
    wire = wire_job_id(engine)
    assert ":" not in wire
    assert engine_job_id(wire) == engine
    assert not wire.isdigit()  # never a bare integer (refused by BullMQ too)


@given(a=st.text(), b=st.text())
def test_queue_job_ids_are_injective(a: str, b: str) -> None:
    if a != b:
        assert wire_job_id(a) != wire_job_id(b)


def test_the_contract_graphs_job_ids_on_the_queue() -> None:
    """Every node of the contract graphs (ids like ``sub:node`` of sub-workflows included)."""
    for name, (graph, _) in d.GRAPHS.items():
        for node in graph["nodes"]:
            wire = wire_job_id(job_id("0f3c", str(node["id"]), 2))
            assert ":" not in wire and wire.startswith("0f3c|") and wire.endswith("|2"), (name, wire)
    assert wire_job_id("r1:sub:node:3") == "r1|sub|node|3"
    assert wire_job_id("r|1:a%b:1") == "r%7C1|a%25b|1"
    assert WIRE_VERSION == 1


def test_queue_names_keep_the_default_and_tag_shards() -> None:
    assert queue_names("flowcraft") == ["flowcraft"]
    assert queue_names("a:b") == ["a:b"]  # unchanged for users who do not opt in
    assert queue_names("flowcraft", cluster=True) == ["{flowcraft}"]
    assert queue_names("q", 3) == ["{q.0}", "{q.1}", "{q.2}"]
    assert queue_names("q", 3, cluster=True) == ["{q.0}", "{q.1}", "{q.2}"]
    with pytest.raises(ValueError, match=r"queue_shards must be >= 1, got 0"):
        queue_names("q", 0)
    with pytest.raises(ValueError, match=r"name must be non-empty without ':', braces or whitespace, got 'a:b'"):
        queue_names("a:b", 2)
    with pytest.raises(ValueError, match=r"got '\{q\}'"):
        queue_names("{q}", cluster=True)


def test_the_shard_of_a_job_is_stable_and_spreads() -> None:
    ids = [job_id("run", f"n{i}", 1) for i in range(300)]
    shards = [shard_of(i, 3) for i in ids]
    assert shards == [shard_of(i, 3) for i in ids]
    assert {shard_of(i, 1) for i in ids} == {0}
    assert all(shards.count(s) > 60 for s in range(3))  # CRC-32 spreads node ids evenly enough
    assert shard_of("r1:a:1", 3) == 2  # documented in docs/wire-protocol.md (crc32("r1:a:1") = 3382574030)


def test_a_bad_shard_count_or_queue_name_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="queue_shards must be >= 1"):
        DistributedExecutor("redis://127.0.0.1:1/0", queue_shards=0)
    with pytest.raises(ValueError, match="without ':', braces or whitespace"):
        Worker(d.REGISTRY, "redis://127.0.0.1:1/0", queue="a b", cluster=True)


def test_the_cli_takes_the_topology_and_pool_options() -> None:
    from flowcraft.cli import build_parser

    args = build_parser().parse_args(
        ["worker", "--registry", "m:R", "--cluster", "--queue-shards", "3", "--max-connections", "20"]
    )
    assert (args.cluster, args.queue_shards, args.max_connections) == (True, 3, 20)
    args = build_parser().parse_args(["status", "r1", "--cluster", "--queue-shards", "2"])
    assert (args.cluster, args.queue_shards) == (True, 2)
    args = build_parser().parse_args(["worker", "--registry", "m:R"])
    assert (args.cluster, args.queue_shards, args.max_connections) == (False, 1, None)
    from flowcraft.cli.errors import CliError

    with pytest.raises(CliError, match=r"--queue-shards: must be >= 1, got 0"):
        build_parser().parse_args(["worker", "--registry", "m:R", "--queue-shards", "0"])
