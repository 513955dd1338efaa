"""Griffe extension (mkdocs.yml): the API reference shows no private base class.

``class ParallelFlow(_Bounded)`` is documented as ``Bases: Flow``: each base whose name
starts with ``_`` is replaced by that base's own bases, recursively, so a reader sees
the public class it really derives from. Only the rendered docs change.
"""

from __future__ import annotations

from typing import Any

import griffe


def _public_bases(cls: griffe.Class, seen: set[str]) -> list[Any]:
    bases: list[Any] = []
    for base in cls.bases:
        path = getattr(base, "canonical_path", str(base))
        if path.rsplit(".", 1)[-1].startswith("_") and path not in seen:
            seen.add(path)
            try:
                private = cls.modules_collection[path]
            except KeyError:
                continue  # not loaded: leave it out rather than show a private name
            bases += [b for b in _public_bases(private, seen) if str(b) not in map(str, bases)]
        elif str(base) not in map(str, bases):
            bases.append(base)
    return bases


class PublicBases(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        def visit(obj: griffe.Object) -> None:
            for member in obj.members.values():
                if member.is_alias:
                    continue
                if isinstance(member, griffe.Class):
                    member.bases = _public_bases(member, set())
                if isinstance(member, (griffe.Module, griffe.Class)):
                    visit(member)

        visit(pkg)
