"""The dashboard's HTML: Jinja templates (``templates/``, autoescaped) and the filters
they use, the context's JSON tree among them.

Nothing a run stores is ever inserted as markup: every value goes through Jinja's
escaping, or through [`json_tree`][flowcraft.ui.views.json_tree], which escapes each
piece it writes. Data for the page's script travels as JSON in a
``<script type="application/json">`` element (``<``, ``>`` and ``&`` escaped), never as code.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

__all__ = ["TEMPLATES", "environment", "json_tree", "script_json"]

TEMPLATES = Path(__file__).with_name("templates")
"""Where the templates are."""

MAX_ITEMS = 200
"""Items of one list or object shown in the context tree (the rest are counted)."""
MAX_TEXT = 4000
"""Characters of one string shown in the context tree (the rest are counted)."""
MAX_DEPTH = 12
"""Levels of the context tree shown."""


def _scalar(value: Any) -> Markup:
    if value is None or isinstance(value, bool):
        return Markup('<span class="j-lit">{}</span>').format(json.dumps(value))
    if isinstance(value, int | float):
        return Markup('<span class="j-num">{}</span>').format(repr(value))
    if isinstance(value, str):
        shown = value if len(value) <= MAX_TEXT else value[:MAX_TEXT]
        more = f" … {len(value) - MAX_TEXT} more characters" if len(value) > MAX_TEXT else ""
        return Markup('<span class="j-str">{}</span>{}').format(json.dumps(shown, ensure_ascii=False), more)
    return Markup('<span class="j-other">{}</span>').format(f"{type(value).__name__}: {value!r}")


def json_tree(value: Any, depth: int = 0) -> Markup:
    """A value as a collapsible tree (``<details>``), every piece escaped."""
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        return Markup('<span class="j-other">… (deeper levels not shown)</span>')
    if isinstance(value, dict):
        items = [(str(key), item) for key, item in value.items()]
        kind, opening, closing = "object", "{", "}"
    elif isinstance(value, list | tuple):
        items = [(str(index), item) for index, item in enumerate(value)]
        kind, opening, closing = "array", "[", "]"
    else:
        return _scalar(value)
    if not items:
        return Markup('<span class="j-lit">{}</span>').format(opening + closing)
    rows = [
        Markup('<li><span class="j-key">{}</span>: {}</li>').format(key, json_tree(item, depth + 1))
        for key, item in items[:MAX_ITEMS]
    ]
    if len(items) > MAX_ITEMS:
        rows.append(Markup("<li>… {} more</li>").format(len(items) - MAX_ITEMS))
    summary = (
        f"{opening} {len(items)} {'key' if kind == 'object' else 'item'}{'s' if len(items) != 1 else ''} {closing}"
    )
    return Markup('<details class="j-tree"{}><summary>{}</summary><ul>{}</ul></details>').format(
        Markup(" open") if depth < 2 else "", summary, Markup("").join(rows)
    )


def script_json(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` element (cannot close the element)."""
    text = json.dumps(value, default=str).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text)


def _when(value: float | None) -> str:
    if not value:
        return "—"
    return datetime.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _ago(value: float | None, now: float | None = None) -> str:
    if not value:
        return ""
    seconds = max(0.0, (now or datetime.datetime.now().timestamp()) - value)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


def environment() -> jinja2.Environment:
    """The templates' environment: autoescaped, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json_tree"] = json_tree
    env.filters["script_json"] = script_json
    env.filters["when"] = _when
    env.filters["ago"] = _ago
    env.globals["escape"] = escape
    return env
