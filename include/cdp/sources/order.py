"""The order streams sync in, from what each declares (``StreamSpec.after``) and its wave.

A stream follows every stream it names in ``after``; an activity stream also follows every people/reference
stream among those ordered (its rows point to people and reference rows, and people resolve against every
people source). Among streams that do not depend on each other the order the caller lists them in decides,
so a run is reproducible; it never overrides a declared dependency.

Pure Python: ``cdp_sync`` builds its tasks and edges from ``sync_plan``, tests check it without Airflow.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cdp.sources.spec import ACTIVITY, PEOPLE_AND_REFERENCE, StreamSpec


class DependencyError(ValueError):
    """The declared stream dependencies name an unknown stream or go round in a circle."""


def dependencies(specs: Sequence[StreamSpec]) -> dict[str, tuple[str, ...]]:
    """Each stream's key -> the keys it must follow (declared ones, then its wave's)."""
    keys = [spec.key for spec in specs]
    if len(set(keys)) != len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise DependencyError(f"streams declared twice: {', '.join(twice)}")
    people_and_reference = [spec.key for spec in specs if spec.wave == PEOPLE_AND_REFERENCE]
    result: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        unknown = [key for key in spec.after if key not in result and key not in keys]
        if unknown:
            raise DependencyError(f"{spec.key} is declared after unknown stream(s) {', '.join(unknown)}")
        if spec.key in spec.after:
            raise DependencyError(f"{spec.key} is declared after itself")
        wave = people_and_reference if spec.wave == ACTIVITY else []
        result[spec.key] = tuple(dict.fromkeys([*spec.after, *wave]))
    return result


def _topological(nodes: Sequence[str], edges: dict[str, Iterable[str]], what: str) -> list[str]:
    """Kahn's algorithm; ties go to the node listed first. ``edges[node]``: what node must follow."""
    position = {node: index for index, node in enumerate(nodes)}
    waiting = {node: set(edges.get(node, ())) for node in nodes}
    followers: dict[str, list[str]] = {node: [] for node in nodes}
    for node, before in waiting.items():
        for other in before:
            followers[other].append(node)
    ready = [position[node] for node, before in waiting.items() if not before]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        ordered.append(node)
        for follower in followers[node]:
            waiting[follower].discard(node)
            if not waiting[follower]:
                heapq.heappush(ready, position[follower])
    if len(ordered) < len(nodes):
        raise DependencyError(f"{what} depend on each other in a cycle: {' -> '.join(_cycle(waiting))}")
    return ordered


def _cycle(waiting: dict[str, set[str]]) -> list[str]:
    """One cycle among the nodes left waiting, as a path that ends where it starts."""
    stuck = {node: before for node, before in waiting.items() if before}
    node = next(iter(stuck))
    path: list[str] = []
    while node not in path:
        path.append(node)
        node = sorted(stuck[node] & stuck.keys())[0]
    return [*path[path.index(node) :], node][::-1]


def sync_order(specs: Sequence[StreamSpec]) -> tuple[StreamSpec, ...]:
    """``specs`` in an order that syncs every stream after everything it depends on."""
    by_key = {spec.key: spec for spec in specs}
    order = _topological([spec.key for spec in specs], dependencies(specs), "streams")
    return tuple(by_key[key] for key in order)


@dataclass(frozen=True)
class SyncTask:
    """One task of the sync: a source's streams of one wave, synced one at a time in ``keys`` order."""

    source: str
    wave: int
    keys: tuple[str, ...]
    upstream: tuple[tuple[str, int], ...]  # the (source, wave) tasks it runs after

    @property
    def name(self) -> tuple[str, int]:
        return (self.source, self.wave)


def sync_plan(specs: Sequence[StreamSpec]) -> tuple[SyncTask, ...]:
    """One task per source and wave, its streams in dependency order, each task after the tasks that hold
    a stream one of its own streams depends on; listed so that a task comes after those it waits for. Raises
    DependencyError when the tasks would wait for each other in a circle (a stream of one task needs another
    task's stream that needs the first task)."""
    ordered = sync_order(specs)
    deps = dependencies(specs)
    task_of = {spec.key: (spec.source, spec.wave) for spec in specs}
    names = list(dict.fromkeys(task_of[spec.key] for spec in ordered))
    upstream: dict[tuple[str, int], dict[tuple[str, int], None]] = {name: {} for name in names}
    for spec in ordered:
        for key in deps[spec.key]:
            if task_of[key] != task_of[spec.key]:
                upstream[task_of[spec.key]][task_of[key]] = None
    label = {name: f"{name[0]} wave {name[1]}" for name in names}
    by_label = {text: name for name, text in label.items()}
    task_order = _topological(
        [label[name] for name in names],
        {label[name]: [label[other] for other in before] for name, before in upstream.items()},
        "sync tasks",
    )
    return tuple(
        SyncTask(
            name[0],
            name[1],
            tuple(spec.key for spec in ordered if task_of[spec.key] == name),
            tuple(upstream[name]),
        )
        for name in (by_label[text] for text in task_order)
    )


def stream_edges(specs: Sequence[StreamSpec]) -> dict[str, tuple[str, ...]]:
    """One task per stream: each stream's key -> the streams its task runs after, in ``sync_order``.

    A stream follows what it depends on (declared, and its wave's) and, so that a vendor sees one stream of
    a source and wave at a time as before, the stream listed before it in the same source and wave. Only
    the edges that are not implied by others are kept (a transitive reduction), which leaves the same order
    and a graph a person can read: a refund after its charge, not after every people stream again.
    """
    ordered = sync_order(specs)
    deps = dependencies(specs)
    wanted: dict[str, set[str]] = {spec.key: set(deps[spec.key]) for spec in ordered}
    previous: dict[tuple[str, int], str] = {}
    for spec in ordered:
        group = (spec.source, spec.wave)
        if group in previous:
            wanted[spec.key].add(previous[group])
        previous[group] = spec.key
    ancestors: dict[str, set[str]] = {}
    for spec in ordered:  # everything a stream waits for, directly or not
        ancestors[spec.key] = set().union(*({up, *ancestors[up]} for up in wanted[spec.key]))
    return {
        spec.key: tuple(
            up
            for up in (key for key in (s.key for s in ordered) if key in wanted[spec.key])
            if not any(up in ancestors[other] for other in wanted[spec.key] if other != up)
        )
        for spec in ordered
    }
