"""Shared test settings."""

import os

from hypothesis import settings

# CI must not fail on a draw no one can rerun: there, property tests use fixed examples
# (and every new failure found locally goes into the test as an @example).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("MEMLOC_CI"):
    settings.load_profile("ci")
