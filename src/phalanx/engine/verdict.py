"""Whether a finished run passed, and the process exit code that says so.

Pure: a function of the final snapshot and the policy. This is the one place
pass/fail is decided; thresholds (k6-style) will add rules here.

Exit codes (documented in README and ``phalanx run --help``):

- 0: the run passed.
- 1: the run failed a rule (failed requests above ``max_fail_ratio``,
  exceptions in tasks, or no request recorded at all).
- 2: the run could not start (bad option, config or script). Not decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from phalanx.stats import StatsSnapshot

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass(frozen=True, slots=True)
class VerdictPolicy:
    max_fail_ratio: float = 0.0
    fail_on_exceptions: bool = True
    fail_on_no_requests: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    exit_code: int
    reasons: tuple[str, ...]


def evaluate(snapshot: StatsSnapshot, policy: VerdictPolicy) -> Verdict:
    """Apply every rule of ``policy`` to ``snapshot``; all failing rules are reported."""
    reasons: list[str] = []
    total = snapshot.total
    exceptions = sum(item.count for item in snapshot.exceptions)
    if policy.fail_on_no_requests and total.num_requests == 0:
        reasons.append("no request was recorded")
    if total.num_requests > 0:
        ratio = total.num_failures / total.num_requests
        if ratio > policy.max_fail_ratio:
            reasons.append(
                f"{total.num_failures} of {total.num_requests} requests failed "
                f"({ratio:.2%}, allowed {policy.max_fail_ratio:.2%})"
            )
    if policy.fail_on_exceptions and exceptions > 0:
        reasons.append(f"{exceptions} exception(s) raised in tasks")
    if reasons:
        return Verdict(False, EXIT_FAILED, tuple(reasons))
    return Verdict(True, EXIT_PASSED, ())
