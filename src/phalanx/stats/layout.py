"""Where a latency goes: the log-bucket layout shared by every histogram form.

Values are seconds. With ``e = relative_error`` and ``gamma = (1 + e) / (1 - e)``,
a value ``v`` in ``[MIN_VALUE, MAX_VALUE]`` goes to bucket
``j = floor(log2(v) / log2(gamma))``, which holds ``[gamma**j, gamma**(j + 1))``;
values below ``MIN_VALUE`` share the "zero" bucket ``zero_index`` (one below
the bucket of ``MIN_VALUE``). The bucket's representative value is
``2 * gamma**(j + 1) / (gamma + 1)``, within relative distance ``e`` of every
value of the bucket.

:class:`~phalanx.stats.histogram.Histogram` (one sparse histogram) and
:mod:`phalanx.stats.dense` (many histograms as arrays) both take their
numbers from :func:`layout_for`, so they agree bucket for bucket and, for
percentiles, bit for bit.

Dense columns: column ``c`` is bucket ``zero_index + c``, for ``c`` in
``[0, size)``; the last column is the bucket of ``MAX_VALUE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from math import floor, log2
from typing import Final

MIN_VALUE: Final = 1e-6
"""Smallest value (seconds) with a relative-error guarantee; smaller ones share one bucket."""

MAX_VALUE: Final = 100_000.0
"""Largest value (seconds, about 27.8 hours) a histogram holds; larger ones are clamped."""

DEFAULT_RELATIVE_ERROR: Final = 0.01

MIN_RELATIVE_ERROR: Final = 1e-4
"""Smallest accepted relative error; it bounds the bucket range to about 127,000."""

NS_PER_S: Final = 1e9

# q * n is computed in floating point; shave a relative hair off before ceil so
# that e.g. 0.99 * 100 == 99.00000000000001 still means rank 99.
RANK_SLACK: Final = 1.0 - 1e-12


def check_relative_error(relative_error: object) -> float:
    """``relative_error`` as a float; ``ValueError`` unless it is a number in the accepted range."""
    if (
        not isinstance(relative_error, float | int)
        or isinstance(relative_error, bool)
        or not MIN_RELATIVE_ERROR <= relative_error < 0.5
    ):
        raise ValueError(
            f"relative_error must be a number in [{MIN_RELATIVE_ERROR}, 0.5),"
            f" got {relative_error!r}"
        )
    return float(relative_error)


def rank(q: float, n: int) -> int:
    """Nearest rank (1-based) of quantile ``q`` among ``n >= 1`` values."""
    return min(n, max(1, math.ceil(q * n * RANK_SLACK)))


@dataclass(frozen=True, slots=True)
class BucketLayout:
    """The buckets of one relative error."""

    relative_error: float
    gamma: float
    inv_log_gamma: float
    """``1 / log2(gamma)``: indices are computed with ``log2`` (a third of ``log``'s cost)."""
    zero_index: int
    size: int
    """Number of dense columns: buckets ``zero_index`` .. bucket of ``MAX_VALUE``."""

    def index_of(self, value: float) -> int:
        """Bucket index of a value already clamped to ``[0, MAX_VALUE]``."""
        return floor(log2(value) * self.inv_log_gamma) if value >= MIN_VALUE else self.zero_index


@lru_cache(maxsize=16)
def layout_for(relative_error: float) -> BucketLayout:
    """The layout of a relative error (memoised; a few floats); ``ValueError`` if out of range."""
    relative_error = check_relative_error(relative_error)
    gamma = (1.0 + relative_error) / (1.0 - relative_error)
    inv = 1.0 / log2(gamma)
    zero_index = floor(log2(MIN_VALUE) * inv) - 1
    last = floor(log2(MAX_VALUE) * inv)
    return BucketLayout(relative_error, gamma, inv, zero_index, last - zero_index + 1)


def representative_values(layout: BucketLayout) -> list[float]:
    """Representative value of each column (column 0, the zero bucket, reads ``min`` instead).

    Computed with the same Python float operations as
    :meth:`~phalanx.stats.histogram.Histogram.percentiles`.
    """
    gamma = layout.gamma
    scale = 2.0 * gamma / (gamma + 1.0)
    first = layout.zero_index
    return [gamma**index * scale for index in range(first, first + layout.size)]
