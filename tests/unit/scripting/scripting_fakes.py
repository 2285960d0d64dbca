"""Test doubles of the scripting tests: the shared ones from tests/support/fakes.py."""

from tests.support.fakes import FakeRecorder, RecordedException, RecordedRequest

__all__ = ["FakeRecorder", "RecordedException", "RecordedRequest"]
