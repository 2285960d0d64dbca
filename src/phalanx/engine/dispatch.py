"""Which users to run: pure arithmetic on class weights, fixed counts and ramps.

No I/O, no clocks: every function takes what it needs (``elapsed`` included).
The runner asks these functions what to do and then does it.

Invariants (tested exhaustively in tests/unit/engine):

- :func:`target_counts` returns counts that sum to ``total`` exactly; each
  ``fixed_count`` class gets ``min(fixed_count, what is left)`` in declaration
  order; the rest is split by weight with the largest-remainder method, so no
  class is more than one user away from its exact weighted share, and ties go
  to the class declared first.
- :func:`next_step` moves ``current`` one user toward ``target``, removing
  before adding, always picking the class whose relative gap is largest, so
  the mix stays proportional at every point of a ramp.
- :func:`ramp_allowance` is how many single-user steps a ramp at ``rate``
  users/s may have taken after ``elapsed`` seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClassSpec:
    """What dispatch needs to know of a User class."""

    name: str
    weight: int = 1
    fixed_count: int = 0


def target_counts(classes: Sequence[ClassSpec], total: int) -> dict[str, int]:
    """How many users of each class make up ``total`` users."""
    if total < 0:
        raise ValueError("total must be >= 0")
    names = [spec.name for spec in classes]
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique")
    counts = dict.fromkeys(names, 0)
    left = total
    for spec in classes:
        if spec.fixed_count > 0:
            counts[spec.name] = min(spec.fixed_count, left)
            left -= counts[spec.name]
    weighted = [spec for spec in classes if spec.fixed_count <= 0]
    weight_sum = sum(max(spec.weight, 0) for spec in weighted)
    if left == 0 or not weighted or weight_sum == 0:
        return counts
    shares = [(spec, left * max(spec.weight, 0) / weight_sum) for spec in weighted]
    assigned = 0
    for spec, share in shares:
        counts[spec.name] = math.floor(share)
        assigned += counts[spec.name]
    order = sorted(
        range(len(shares)), key=lambda i: (-(shares[i][1] - math.floor(shares[i][1])), i)
    )
    for index in order[: left - assigned]:
        counts[shares[index][0].name] += 1
    return counts


def next_step(current: Mapping[str, int], target: Mapping[str, int]) -> tuple[str, int] | None:
    """The next single change, ``(class name, +1 or -1)``, or ``None`` when at target.

    Removals come first (a smaller target frees capacity before anything new
    starts). Among candidates the class with the largest gap relative to its
    target (or to its current count, when removing) wins; ties go to the
    first name in ``target``'s order, then ``current``'s.
    """
    names = list(target) + [name for name in current if name not in target]
    best: tuple[float, int, str] | None = None
    for index, name in enumerate(names):
        have, want = current.get(name, 0), target.get(name, 0)
        if have > want:
            gap = (have - want) / have
            if best is None or (gap, -index) > (best[0], -best[1]):
                best = (gap, index, name)
    if best is not None:
        return best[2], -1
    for index, name in enumerate(names):
        have, want = current.get(name, 0), target.get(name, 0)
        if have < want:
            gap = (want - have) / want
            if best is None or (gap, -index) > (best[0], -best[1]):
                best = (gap, index, name)
    if best is not None:
        return best[2], 1
    return None


def steps_needed(current: Mapping[str, int], target: Mapping[str, int]) -> int:
    """How many single-user steps :func:`next_step` takes to reach ``target``."""
    names = set(current) | set(target)
    return sum(abs(current.get(name, 0) - target.get(name, 0)) for name in names)


def ramp_allowance(rate: float, elapsed: float) -> int:
    """Steps a ramp at ``rate`` users/s may have made ``elapsed`` s after it began.

    The first step is allowed at once (elapsed 0 gives 1), then one every
    ``1/rate`` seconds.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0")
    if elapsed < 0:
        return 0
    # The epsilon absorbs float error so that elapsed == k/rate allows step k+1.
    return math.floor(elapsed * rate + 1e-9) + 1


def seconds_until_step(rate: float, elapsed: float, steps_taken: int) -> float:
    """How long after ``elapsed`` the ramp may take step number ``steps_taken + 1``."""
    due = steps_taken / rate
    return max(0.0, due - elapsed)
