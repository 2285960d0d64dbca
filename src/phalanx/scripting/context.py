"""What every simulated user of one run shares: :class:`UserContext`.

One context is built per run (by the CLI or the worker) and handed to every
user; users keep only a reference to it, so per-user memory stays tiny.

The context itself is immutable. Its :attr:`UserContext.memo` is the one
run-scoped mutable part: compiled task tables, per-class HTTP options and
"log this only once" keys. It belongs to the run (never a module global), so a
new run starts with fresh caches and warnings. All access happens on the
run's event loop thread, so no locking is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from random import Random
from typing import TYPE_CHECKING, Final, TypeVar, cast

if TYPE_CHECKING:
    from phalanx.core.results import RequestRecorder
    from phalanx.http.options import HttpOptions, TlsContexts

_T = TypeVar("_T")

ONCE_KEYS_LIMIT: Final = 4096
"""At most this many distinct "once" keys are remembered per run; past it,
:meth:`RunMemo.first_time` answers False (logging stops, recording does not)."""


def _default_logger() -> logging.Logger:
    return logging.getLogger("phalanx.user")


class RunMemo:
    """Run-scoped caches shared by all users of a run (see the module docstring)."""

    __slots__ = ("_once", "_values")

    def __init__(self) -> None:
        self._values: dict[Hashable, object] = {}
        self._once: set[Hashable] = set()

    def get(self, key: Hashable, factory: Callable[[], _T]) -> _T:
        """The value cached under ``key``, built by ``factory()`` the first time."""
        try:
            return cast(_T, self._values[key])
        except KeyError:
            value = factory()
            self._values[key] = value
            return value

    def first_time(self, key: Hashable) -> bool:
        """True the first time ``key`` is seen in this run, False afterwards."""
        if key in self._once or len(self._once) >= ONCE_KEYS_LIMIT:
            return False
        self._once.add(key)
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class UserContext:
    """Shared by all users of a run.

    ``host`` is the run's ``--host``: when given it overrides the classes'
    ``host``. ``http_options=None`` means the HTTP client's defaults and
    ``tls=None`` means one shared :class:`~phalanx.http.options.TlsContexts`
    created on first use (never one per user). ``tags``/``exclude_tags`` filter
    tasks (None: no filter). ``random`` is the run's seeded generator, used for
    task selection and random wait times.
    """

    recorder: RequestRecorder
    host: str | None = None
    http_options: HttpOptions | None = None
    tls: TlsContexts | None = None
    tags: frozenset[str] | None = None
    exclude_tags: frozenset[str] | None = None
    random: Random = field(default_factory=Random)
    logger: logging.Logger = field(default_factory=_default_logger)
    memo: RunMemo = field(default_factory=RunMemo, init=False, repr=False, compare=False)
