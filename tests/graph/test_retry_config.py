"""SPEC §10: the retry policy's JSON ``config`` names in graphs and blueprints."""

from __future__ import annotations

import pytest

from flowcraft import InvalidGraphError, Node, RetryPolicy
from flowcraft.graph import GraphBuilder


class Call(Node):
    def __init__(self, data=None, **deps):
        super().__init__()


class Limited(Exception):
    pass


def build(config, registry=None):
    graph = {"nodes": [{"id": "call", "type": "call", "config": config}], "edges": []}
    return GraphBuilder(registry or {"call": Call}).build(graph).node_map["call"]


def test_policy_config_names_become_a_retry_policy_in_seconds():
    node = build(
        {"maxRetries": 5, "retryDelay": 500, "backoff": 2, "maxWait": 8000, "jitter": 0.25,
         "retryOn": ["TimeoutError", f"{__name__}.Limited"], "timeout": 3000}
    )  # fmt: skip
    assert node.retry == RetryPolicy(
        max_attempts=5, wait=0.5, backoff=2.0, max_wait=8.0, jitter=0.25, retry_on=(TimeoutError, Limited)
    )
    assert (node.max_retries, node.wait, node.timeout) == (5, 0.5, 3.0)


def test_wait_is_the_same_delay_as_retry_delay():
    assert build({"wait": 250, "backoff": 3}).retry == RetryPolicy(max_attempts=1, wait=0.25, backoff=3.0)


def test_plain_max_retries_and_wait_stay_shorthand():
    node = build({"maxRetries": 3, "wait": 100})
    assert node.retry is None and (node.max_retries, node.wait) == (3, 0.1)


def test_config_over_a_class_policy_changes_only_what_it_names():
    class Backoff(Call):
        def __init__(self, data=None, **deps):
            Node.__init__(self, retry=RetryPolicy(max_attempts=2, wait=1.0, backoff=2.0, retry_on=KeyError))

    node = build({"maxRetries": 4}, {"call": Backoff})
    assert node.retry == RetryPolicy(max_attempts=4, wait=1.0, backoff=2.0, retry_on=KeyError)


@pytest.mark.parametrize(
    ("config", "match", "path"),
    [
        ({"retryOn": ["NoSuchError"]}, r"'call'.*retryOn\[0\].*'NoSuchError' does not name an exception", "retryOn[0]"),
        (
            {"retryOn": ["TimeoutError", "not_imported_pkg.Err"]},
            r"module 'not_imported_pkg' is not imported",
            "retryOn[1]",
        ),
        ({"retryOn": ["builtins.len"]}, "does not name an exception class", "retryOn[0]"),
        ({"retryOn": "TimeoutError"}, "retryOn: expected a non-empty list", "retryOn"),
        ({"backoff": 0.5}, r"backoff: expected a number >= 1", "backoff"),
        ({"jitter": 2}, r"jitter: expected a number in \[0, 1\]", "jitter"),
        ({"maxWait": -1}, "maxWait: expected a number of milliseconds >= 0", "maxWait"),
        ({"retryDelay": "1s"}, "retryDelay: expected a number of milliseconds", "retryDelay"),
        ({"retryDelay": 10, "wait": 10}, "retryDelay or wait", "retryDelay"),
    ],
)
def test_bad_policy_config_is_a_build_error_naming_node_and_field(config, match, path):
    with pytest.raises(InvalidGraphError, match=match) as info:
        build(config)
    assert info.value.path is not None and info.value.path.endswith(path)


def test_unknown_exception_names_fail_build_blueprint_too():
    graph = {"nodes": [{"id": "call", "type": "call", "config": {"retryOn": ["Nope"]}}], "edges": []}
    with pytest.raises(InvalidGraphError, match="'call'") as info:
        GraphBuilder({"call": Call}).build_blueprint(graph)
    assert info.value.node_id == "call" and info.value.path == "nodes[0].config.retryOn[0]"
