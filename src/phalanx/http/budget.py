"""The run-wide cap on open connections (:class:`ConnectionBudget`).

One budget is shared by every session of a run (through
:class:`~phalanx.http.options.HttpOptions`). A pool reserves a unit before it
opens a connection; the unit comes back when that connection's transport is
lost (closed by either side, whatever the path: discard, pool close, a
cancelled close, a session dropped without closing), so the count follows
real sockets. A reservation beyond ``limit`` is refused and the request fails
with kind ``connection_limit`` instead of exhausting file descriptors. The
engine pauses spawning at :attr:`full` and resumes below
:attr:`resume_below` (90%, so the decision does not flap). Single event loop.
"""

from __future__ import annotations

import contextlib
import resource

__all__ = ["ConnectionBudget", "default_connection_limit", "raise_descriptor_limit"]


class ConnectionBudget:
    """Counts open connections against ``limit``; see the module docstring."""

    __slots__ = ("limit", "open", "refused")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the connection limit must be at least 1")
        self.limit = limit
        self.open = 0
        self.refused = 0

    def reserve(self) -> bool:
        """Take one unit; False (and counted) when the limit is reached."""
        if self.open >= self.limit:
            self.refused += 1
            return False
        self.open += 1
        return True

    def release(self) -> None:
        """Give one unit back."""
        if self.open > 0:
            self.open -= 1

    @property
    def full(self) -> bool:
        return self.open >= self.limit

    @property
    def resume_below(self) -> int:
        return max(1, self.limit * 9 // 10)


def raise_descriptor_limit() -> None:
    """Raise this process's soft file-descriptor limit to its hard limit (at most 1M):
    a load generator needs sockets; the hard limit is what the operator allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else min(hard, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        # On refusal the soft limit stays; the default budget follows it.
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def default_connection_limit() -> int:
    """90% of this process's file-descriptor limit (the rest is for files, sockets of the
    runtime, the terminal), at most 100,000: past it, connects fail with EMFILE anyway."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 100_000
    return max(16, min(100_000, int(soft * 0.9) - 32))
