"""Loggers (ConsoleLogger, StdlibLogger, NullLogger) and the action sentinels."""

from __future__ import annotations

import copy
import io
import logging
import pickle

import pytest

from flowcraft import (
    DEFAULT_ACTION,
    FILTER_FAILED,
    ConsoleLogger,
    Flow,
    Logger,
    Node,
    NullLogger,
    StdlibLogger,
)

from .helpers import run


def test_console_logger_levels_and_format():
    stream = io.StringIO()
    logger = ConsoleLogger("warn", stream=stream)
    assert isinstance(logger, Logger)
    logger.debug("d")
    logger.info("i")
    logger.warn("careful", node="n1")
    logger.error("bad", {"a": 1}, b=2)
    lines = stream.getvalue().splitlines()
    assert lines == ["[WARN] careful {'node': 'n1'}", "[ERROR] bad {'a': 1, 'b': 2}"]


def test_console_logger_default_level_is_info_on_stderr(capsys):
    logger = ConsoleLogger()
    logger.debug("hidden")
    logger.info("shown")
    captured = capsys.readouterr()
    assert captured.err == "[INFO] shown\n"
    assert captured.out == ""


def test_console_logger_rejects_unknown_level():
    with pytest.raises(ValueError, match="ConsoleLogger level must be one of"):
        ConsoleLogger("verbose")


def test_stdlib_logger_adapts_logging(caplog):
    std = logging.getLogger("flowcraft.tests.core")
    logger = StdlibLogger(std)
    with caplog.at_level(logging.DEBUG, logger="flowcraft.tests.core"):
        logger.debug("d")
        logger.info("i", step=1)
        logger.warn("w")
        logger.error("e", {"x": 1})
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "d"),
        (logging.INFO, "i"),
        (logging.WARNING, "w"),
        (logging.ERROR, "e"),
    ]
    assert caplog.records[1].flowcraft == {"step": 1}
    assert caplog.records[3].flowcraft == {"x": 1}


def test_stdlib_logger_default_and_disabled_levels(caplog):
    logger = StdlibLogger()
    assert logger.logger.name == "flowcraft"
    with caplog.at_level(logging.ERROR, logger="flowcraft"):
        logger.info("skipped")
        logger.error("kept")
    assert [r.getMessage() for r in caplog.records] == ["kept"]


def test_null_logger_accepts_everything():
    logger = NullLogger()
    for method in (logger.debug, logger.info, logger.warn, logger.error):
        assert method("m", {"a": 1}, b=2) is None


def test_retry_warnings_reach_a_stdlib_logger(caplog):
    class Flaky(Node):
        def __init__(self):
            super().__init__(max_retries=2)
            self.calls = 0

        def exec(self, args):
            self.calls += 1
            if self.calls == 1:
                raise ValueError("once")

    with caplog.at_level(logging.WARNING, logger="flowcraft.retry"):
        run(Flow(Flaky()).run(logger=StdlibLogger(logging.getLogger("flowcraft.retry"))))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "Attempt 1/2 failed" in caplog.records[0].getMessage()


def test_node_run_warns_about_successors():
    from .helpers import RecordingLogger

    node = Node()
    node.next(Node())
    logger = RecordingLogger()
    run(node.run(logger=logger))
    assert any("has successors" in m for m in logger.messages("warn"))


# ---- actions ---------------------------------------------------------------------------


def test_sentinels_have_readable_repr():
    assert repr(DEFAULT_ACTION) == "DEFAULT_ACTION"
    assert repr(FILTER_FAILED) == "FILTER_FAILED"
    assert DEFAULT_ACTION is not FILTER_FAILED
    assert DEFAULT_ACTION != "default"


@pytest.mark.parametrize("sentinel", [DEFAULT_ACTION, FILTER_FAILED])
def test_sentinel_identity_survives_pickle_and_copy(sentinel):
    assert pickle.loads(pickle.dumps(sentinel)) is sentinel
    assert copy.copy(sentinel) is sentinel
    assert copy.deepcopy(sentinel) is sentinel
    assert copy.deepcopy({"a": [sentinel]})["a"][0] is sentinel
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(sentinel, protocol)) is sentinel


def test_successors_keyed_by_pickled_sentinel():
    a, b = Node(), Node()
    a.next(b)
    assert a.successors[pickle.loads(pickle.dumps(DEFAULT_ACTION))] == [b]


def test_action_label_names_the_sentinels_and_keeps_other_actions():
    from flowcraft.actions import DEFAULT_ACTION, FILTER_FAILED, action_label

    assert action_label(DEFAULT_ACTION) == "default"
    assert action_label(FILTER_FAILED) == "filter_failed"
    assert action_label("approved") == "approved"
    assert action_label([1, 2]) == [1, 2]


def test_level_logger_subclass_gets_all_four_levels_with_merged_context():
    from flowcraft.loggers import LevelLogger

    class ListLogger(LevelLogger):
        def __init__(self):
            self.lines = []

        def log(self, level, message, context):
            self.lines.append((level, message, context))

    logger = ListLogger()
    logger.debug("d")
    logger.info("i", {"a": 1}, b=2)
    logger.warn("w", x=1)
    logger.error("e", {"a": 1})
    assert logger.lines == [
        ("debug", "d", {}),
        ("info", "i", {"a": 1, "b": 2}),
        ("warn", "w", {"x": 1}),
        ("error", "e", {"a": 1}),
    ]
