"""Test doubles for users' own test suites: assert what your app records, without a database."""

from watchkeeper.testing.memory import MemorySink

__all__ = ["MemorySink"]
