"""Fixtures for real ZeroMQ links on 127.0.0.1 / ipc: a keys directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from phalanx.transport import KeyDir


@pytest.fixture
def keys(tmp_path: Path) -> KeyDir:
    """A keys directory with workers w1 and w2 authorized."""
    keys = KeyDir(tmp_path / "keys")
    keys.init()
    keys.add_worker("w2")
    return keys
