"""Who runs which users: pure arithmetic spreading class counts over workers.

No I/O, no clocks. The master computes the cluster-wide counts per class
with :func:`phalanx.engine.dispatch.target_counts`, then asks this module how
to split them over the alive workers (sorted authenticated keys).

Invariants (tested with hypothesis in tests/unit/cluster):

- **Exact sums**: for every class, the workers' counts add up to the class
  count exactly (when there is at least one worker; with none, nothing is
  placed and the result is empty).
- **Even per class**: for every class, max - min across workers <= 1.
- **Even totals**: max - min of the workers' totals <= 1.
- **Deterministic**: the same inputs give the same output, whatever the order
  of the mappings and of ``workers`` (workers and classes are sorted).
- :func:`rebalance` starts the fewest users possible among all splits that
  keep the three guarantees above: a worker keeps what it runs wherever it
  can, the users of a worker that left go to the others, and a worker that
  returns gets its share back. When nothing runs yet it returns exactly
  :func:`distribute`'s split.
- :func:`ramp_plan` splits the global spawn rate so every worker finishes its
  ramp at the same moment: the cluster as a whole ramps at the global rate.

Every worker in a result carries every class (zeros included), so a
``Start`` built from it also tells a worker which classes to stop.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

from phalanx.engine.dispatch import steps_needed


def _check(class_counts: Mapping[str, int], workers: Sequence[str]) -> tuple[list[str], list[str]]:
    ordered = sorted(workers)
    if len(set(ordered)) != len(ordered):
        raise ValueError("worker keys must be unique")
    for name, count in class_counts.items():
        if count < 0:
            raise ValueError(f"class {name!r}: count must be >= 0")
    return ordered, sorted(class_counts)


def _rotation(class_counts: Mapping[str, int], workers: list[str],
              classes: list[str]) -> dict[str, dict[str, int]]:
    """Base share to all, remainders handed out round-robin across classes."""
    n = len(workers)
    result = {worker: dict.fromkeys(classes, 0) for worker in workers}
    offset = 0
    for name in classes:
        base, extra = divmod(class_counts[name], n)
        for index, worker in enumerate(workers):
            result[worker][name] = base
            if (index - offset) % n < extra:
                result[worker][name] += 1
        offset = (offset + extra) % n
    return result


def distribute(class_counts: Mapping[str, int],
               workers: Sequence[str]) -> dict[str, dict[str, int]]:
    """Split every class's users over ``workers`` evenly, per class and in total.

    Each worker gets ``count // n`` of every class; the remainders go out
    round-robin over the sorted workers, continuing where the previous class
    (sorted by name) stopped, so no worker gets two remainders before every
    worker got one.
    """
    ordered, classes = _check(class_counts, workers)
    if not ordered:
        return {}
    return _rotation(class_counts, ordered, classes)


def moves(current: Mapping[str, Mapping[str, int]],
          new: Mapping[str, Mapping[str, int]]) -> int:
    """How many users ``new`` starts compared with ``current``: sum of max(0, new - old)."""
    return sum(
        max(0, count - current.get(worker, {}).get(name, 0))
        for worker, counts in new.items()
        for name, count in counts.items()
    )


class _Flow:
    """A small residual graph for min-cost flow (successive shortest paths)."""

    __slots__ = ("adj", "cap", "cost", "to")

    def __init__(self, nodes: int) -> None:
        self.adj: list[list[int]] = [[] for _ in range(nodes)]
        self.to: list[int] = []
        self.cap: list[int] = []
        self.cost: list[int] = []

    def add(self, u: int, v: int, cap: int, cost: int, flow: int = 0) -> int:
        edge = len(self.to)
        self.to += [v, u]
        self.cap += [cap - flow, flow]
        self.cost += [cost, -cost]
        self.adj[u].append(edge)
        self.adj[v].append(edge + 1)
        return edge

    def push(self, source: int, sink: int, amount: int) -> None:
        """Push ``amount`` units along cheapest paths (Bellman-Ford queue)."""
        nodes = len(self.adj)
        while amount > 0:
            dist: list[float] = [math.inf] * nodes
            via = [-1] * nodes
            queued = [False] * nodes
            dist[source] = 0
            queue = deque([source])
            while queue:
                u = queue.popleft()
                queued[u] = False
                for edge in self.adj[u]:
                    if self.cap[edge] <= 0:
                        continue
                    v = self.to[edge]
                    if dist[u] + self.cost[edge] < dist[v]:
                        dist[v] = dist[u] + self.cost[edge]
                        via[v] = edge
                        if not queued[v]:
                            queued[v] = True
                            queue.append(v)
            if via[sink] < 0:
                raise AssertionError("no feasible even split (cannot happen)")
            bottleneck = amount
            node = sink
            while node != source:
                edge = via[node]
                bottleneck = min(bottleneck, self.cap[edge])
                node = self.to[edge ^ 1]
            node = sink
            while node != source:
                edge = via[node]
                self.cap[edge] -= bottleneck
                self.cap[edge ^ 1] += bottleneck
                node = self.to[edge ^ 1]
            amount -= bottleneck


def rebalance(current: Mapping[str, Mapping[str, int]], class_counts: Mapping[str, int],
              workers: Sequence[str]) -> dict[str, dict[str, int]]:
    """An even split of ``class_counts`` over ``workers`` that starts the fewest users.

    ``current`` is what each worker runs now (workers not in ``workers``,
    e.g. missing ones, are dropped: their users are redistributed). Every
    worker gets ``count // n`` of each class; which workers get the
    remainders is chosen by a min-cost flow so that the fewest users are
    started (ties broken toward :func:`distribute`'s split, so the result is
    deterministic and equals it when nothing runs yet).

    Cost: one Bellman-Ford path search per remainder unit that the per-class
    best choice puts on an already-full worker; in practice a handful.
    """
    ordered, classes = _check(class_counts, workers)
    if not ordered:
        return {}
    n = len(ordered)
    preferred = _rotation(class_counts, ordered, classes)
    base = {name: class_counts[name] // n for name in classes}
    extra = {name: class_counts[name] % n for name in classes}
    with_extra = [name for name in classes if extra[name] > 0]
    total_extra = sum(extra.values())
    floor_share, ceil_slots = divmod(total_extra, n)

    def cost(worker: str, name: str) -> int:
        old = current.get(worker, {}).get(name, 0)
        starts = 1 if old <= base[name] else 0
        tie = 0 if preferred[worker][name] > base[name] else 1
        return starts * (total_extra + 1) + tie

    # Per class, the cheapest workers take the remainders (optimal if totals were free).
    chosen: dict[str, set[int]] = {}
    for name in with_extra:
        rank = sorted((cost(worker, name), i) for i, worker in enumerate(ordered))
        chosen[name] = {i for _, i in rank[: extra[name]]}
    # Then a min-cost flow moves remainders off over-full workers until totals are even.
    source, sink, spare = 0, 1, 2
    first_class = 3
    first_worker = first_class + len(with_extra)
    graph = _Flow(first_worker + n)
    cells: dict[tuple[int, str], int] = {}
    for c, name in enumerate(with_extra):
        for i, worker in enumerate(ordered):
            flow = 1 if i in chosen[name] else 0
            cells[i, name] = graph.add(first_class + c, first_worker + i, 1, cost(worker, name),
                                       flow)
    spare_used = 0
    excess_total = 0
    for i in range(n):
        load = sum(1 for name in with_extra if i in chosen[name])
        to_sink = min(load, floor_share)
        graph.add(first_worker + i, sink, floor_share, 0, to_sink)
        to_spare = 1 if load > to_sink and spare_used < ceil_slots else 0
        spare_used += to_spare
        graph.add(first_worker + i, spare, 1, 0, to_spare)
        excess = load - to_sink - to_spare
        if excess > 0:
            graph.add(source, first_worker + i, excess, 0)
            excess_total += excess
    graph.add(spare, sink, ceil_slots, 0, spare_used)
    graph.push(source, sink, excess_total)
    result = {worker: dict(base) for worker in ordered}
    for (i, name), edge in cells.items():
        if graph.cap[edge] == 0:
            result[ordered[i]][name] += 1
    return result


def ramp_plan(current: Mapping[str, Mapping[str, int]], target: Mapping[str, Mapping[str, int]],
              spawn_rate: float, n_workers: int) -> dict[str, float]:
    """Each worker's spawn rate so the whole cluster ramps at ``spawn_rate`` users/s.

    A worker's rate is the global rate times its share of the single-user
    steps (starts and stops, :func:`phalanx.engine.dispatch.steps_needed`)
    the cluster has to take, so every worker finishes at the same moment and
    the rates of the workers with work add up to ``spawn_rate``. A worker
    with nothing to do (or every worker, when nobody has work) gets
    ``spawn_rate / n_workers``: a positive rate that changes nothing, since
    ``Start`` requires one. Workers are the keys of ``target``.
    """
    if not (math.isfinite(spawn_rate) and spawn_rate > 0):
        raise ValueError("spawn_rate must be a finite number > 0")
    if n_workers < 1:
        raise ValueError("n_workers must be >= 1")
    steps = {worker: steps_needed(current.get(worker, {}), target[worker])
             for worker in sorted(target)}
    total = sum(steps.values())
    idle_rate = spawn_rate / n_workers
    return {worker: (spawn_rate * count / total if count > 0 else idle_rate)
            for worker, count in steps.items()}
