"""Print the cost of the stats hot path: ns per Histogram.record and Recorder.record.

Not a test: absolute numbers drift on shared machines; compare runs side by side.
Run: ``python bench/bench_histogram.py``.
"""

from __future__ import annotations

import random
import timeit
from collections.abc import Callable

from phalanx.core.results import RequestFailure
from phalanx.stats import Histogram, Recorder

VALUES = 10_000
LOOPS = 50
REPEATS = 7


def _best_ns_per_call(run: Callable[[], None], calls: int) -> float:
    best = min(timeit.repeat(run, number=LOOPS, repeat=REPEATS))
    return best / (LOOPS * calls) * 1e9


def main() -> None:
    rng = random.Random(1234)
    values = [rng.lognormvariate(-3.0, 1.0) for _ in range(VALUES)]
    names = [f"/item/{i}" for i in range(20)]
    requests = [(names[i % len(names)], v) for i, v in enumerate(values)]
    failure = RequestFailure("http_status", "HTTP 500")

    def loop_overhead() -> None:
        for _value in values:
            pass

    histogram = Histogram()
    record = histogram.record

    def histogram_record() -> None:
        for value in values:
            record(value)

    recorder = Recorder(0.0)
    rec = recorder.record

    def recorder_record() -> None:
        for name, value in requests:
            rec("GET", name, value, 512, None)

    def recorder_record_failure() -> None:
        for name, value in requests:
            rec("GET", name, value, 512, failure)

    overhead = _best_ns_per_call(loop_overhead, VALUES)
    for label, run in (
        ("Histogram.record", histogram_record),
        ("Recorder.record (success)", recorder_record),
        ("Recorder.record (failure)", recorder_record_failure),
    ):
        ns = _best_ns_per_call(run, VALUES) - overhead
        print(f"{label:28s} {ns:7.1f} ns/record")
    print(f"{'(loop overhead, subtracted)':28s} {overhead:7.1f} ns")


if __name__ == "__main__":
    main()
