"""Loading what the command line is given: graph files, registries, context and params."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import GraphError
from ..graph import BuildResult, GraphBuilder, WorkflowGraph
from .errors import EXIT_USAGE, CliError

__all__ = [
    "DEFAULT_REDIS_URL",
    "BuilderOptions",
    "DirectoryResolver",
    "RedisTarget",
    "StoreTarget",
    "ensure_cwd_importable",
    "load_builder",
    "load_object",
    "parse_context",
    "parse_params",
    "read_graph",
    "read_json_file",
    "user_node_ids",
]


DEFAULT_REDIS_URL = "redis://localhost:6379/0"
"""Where ``--redis`` points when neither it nor ``$FLOWCRAFT_REDIS_URL`` is given."""


def read_json_file(path: str, what: str) -> Any:
    """Parse the JSON file at ``path`` (``what`` names it in error messages)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{what} {path!r} does not exist") from None
    except IsADirectoryError:
        raise CliError(f"{what} {path!r} is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {what} {path!r}: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{what} {path!r} is not valid JSON: {error}") from None


def read_graph(path: str) -> WorkflowGraph:
    """Read and parse a graph file.

    Raises:
        CliError: the file is unreadable, not JSON, or not shaped like a graph.
    """
    raw = read_json_file(path, "graph file")
    try:
        return WorkflowGraph.from_dict(raw)
    except GraphError as error:
        raise CliError(f"graph file {path!r} is invalid: {error}") from None


def ensure_cwd_importable() -> None:
    """Put the current directory on ``sys.path`` (as ``python -m`` does) so ``--registry``
    modules resolve relative to it; the ``flowcraft`` console script would not otherwise."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def load_object(ref: str, option: str) -> Any:
    """Import ``package.module:NAME`` (``NAME`` may be dotted) and return the object.

    Modules are resolved from the current directory first, then the installed packages.

    Raises:
        CliError: malformed reference, module not importable, or attribute missing.
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"{option} {ref!r} must look like package.module:NAME (e.g. myapp.nodes:REGISTRY)")
    ensure_cwd_importable()
    try:
        value: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is not None and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise CliError(
                f"{option} {ref!r}: no module named {module_name!r} (run from the directory that contains "
                f"{module_name.split('.')[0]!r}, or install it)"
            ) from None
        raise CliError(f"{option} {ref!r}: importing {module_name!r} failed: {error}") from None
    except Exception as error:
        raise CliError(f"{option} {ref!r}: importing {module_name!r} failed: {type(error).__name__}: {error}") from None
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CliError(f"{option} {ref!r}: module {module_name!r} has no attribute {attr!r}") from None
    return value


class DirectoryResolver:
    """Resolves a sub-workflow id to ``<directory>/<id>.json`` (the first directory that has it)."""

    def __init__(self, *directories: str | Path) -> None:
        self.directories = [Path(d) for d in directories]

    def get_graph(self, workflow_id: str | int) -> WorkflowGraph | None:
        """The graph in ``<directory>/<workflow_id>.json``, or ``None`` when no directory has it."""
        name = str(workflow_id)
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        for directory in self.directories:
            path = directory / f"{name}.json"
            if path.is_file():
                return read_graph(str(path))
        return None


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:120]


def _as_builder(value: Any, ref: str, options: BuilderOptions) -> GraphBuilder:
    if isinstance(value, GraphBuilder):
        if options.any_set():
            raise CliError(
                f"--registry {ref!r} is a configured GraphBuilder: drop --sub-workflow-type, --conditional-type "
                "and --workflows, or point --registry at a plain registry mapping"
            )
        return value
    if isinstance(value, Mapping):
        for key, factory in value.items():
            if not isinstance(key, str) or not callable(factory):
                raise CliError(
                    f"--registry {ref!r} is not a node registry: entry {key!r} maps to {_describe(factory)}, "
                    "expected a node class or factory"
                )
        try:
            return GraphBuilder(
                value,
                sub_workflow_node_types=options.sub_workflow_types,
                sub_workflow_resolver=DirectoryResolver(options.workflows) if options.workflows else None,
                conditional_node_types=options.conditional_types,
            )
        except (TypeError, ValueError) as error:
            raise CliError(f"--registry {ref!r} is not a node registry: {error}") from None
    raise CliError(
        f"--registry {ref!r} is a {type(value).__name__}, not a node registry: expected a mapping of node type "
        "to node class, a GraphBuilder, or a function returning one"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where distributed runs live: the Redis URL, queue name and key prefix (and whether
    the URL is a Redis Cluster node, and how many shards the queue has)."""

    url: str
    queue: str = "flowcraft"
    prefix: str = "flowcraft"
    cluster: bool = False
    queue_shards: int = 1

    def redacted(self) -> str:
        """The URL with any credentials hidden."""
        scheme, sep, rest = self.url.partition("://")
        if "@" in rest:
            rest = "***@" + rest.split("@", 1)[1]
        return scheme + sep + rest


@dataclasses.dataclass(frozen=True, slots=True)
class StoreTarget:
    """Where durable runs live on this machine: a run store file (``--store``)."""

    path: str


class BuilderOptions:
    """Builder settings given on the command line for a plain registry mapping."""

    def __init__(
        self,
        sub_workflow_types: Sequence[str] = (),
        conditional_types: Sequence[str] = (),
        workflows: str | None = None,
    ) -> None:
        self.sub_workflow_types = tuple(sub_workflow_types)
        self.conditional_types = tuple(conditional_types)
        self.workflows = workflows

    def any_set(self) -> bool:
        """Whether any option was given."""
        return bool(self.sub_workflow_types or self.conditional_types or self.workflows)

    def to_dict(self) -> dict[str, Any]:
        """The options given, as stored with a durable run (empty when none were)."""
        out: dict[str, Any] = {}
        if self.sub_workflow_types:
            out["sub_workflow_types"] = list(self.sub_workflow_types)
        if self.conditional_types:
            out["conditional_types"] = list(self.conditional_types)
        if self.workflows:
            out["workflows"] = os.path.abspath(self.workflows)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuilderOptions:
        """The options stored by ``to_dict()``."""
        return cls(data.get("sub_workflow_types", ()), data.get("conditional_types", ()), data.get("workflows"))


def load_builder(ref: str, options: BuilderOptions | None = None) -> GraphBuilder:
    """The [`GraphBuilder`][flowcraft.graph.GraphBuilder] behind ``--registry ref``.

    ``ref`` names a registry mapping (type → node class), a configured ``GraphBuilder``,
    or a function of no arguments returning either.

    Raises:
        CliError: the reference cannot be loaded or is not a registry.
    """
    options = options or BuilderOptions()
    value = load_object(ref, "--registry")
    if callable(value) and not isinstance(value, (GraphBuilder, Mapping, type)):
        factory: Callable[[], Any] = value
        try:
            value = factory()
        except TypeError as error:
            raise CliError(
                f"--registry {ref!r} is a function but calling it with no arguments failed: {error}; "
                "point --registry at a registry mapping, a GraphBuilder, or a function of no arguments"
            ) from None
    return _as_builder(value, ref, options)


def parse_context(text: str | None) -> dict[str, Any]:
    """The initial context from ``--context``: a JSON object, or ``@path`` to a JSON file.

    Raises:
        CliError: malformed JSON, unreadable file, or not a JSON object.
    """
    if text is None:
        return {}
    if text.startswith("@"):
        value = read_json_file(text[1:], "--context file")
        where = f"--context file {text[1:]!r}"
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise CliError(
                f'--context is not valid JSON ({error}); pass a JSON object such as \'{{"text": "hi"}}\' or @file.json'
            ) from None
        where = "--context"
    if not isinstance(value, dict):
        raise CliError(f"{where} must be a JSON object (key → value), got {type(value).__name__}")
    return value


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """Run params from ``--param key=value`` items; values are JSON when they parse, else strings.

    Raises:
        CliError: an item without ``=`` or with an empty key.
    """
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--param {item!r} must look like key=value (e.g. --param threshold=0.8)", EXIT_USAGE)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def user_node_ids(result: BuildResult) -> list[str]:
    """The nodes of a built graph that progress displays show (not those the builder inserted)."""
    return [
        node_id
        for node_id, node in result.node_map.items()
        if not str(getattr(node.graph_data, "type", "")).startswith("__internal")
    ]
