"""The suite's own safety nets: a hang fails in minutes, and CI's hypothesis examples reproduce."""

from __future__ import annotations

import pytest
from hypothesis import settings as hypothesis_settings


def test_every_test_has_a_timeout_that_survives_a_busy_event_loop(
    pytestconfig: pytest.Config,
) -> None:
    assert 0 < float(pytestconfig.getini("timeout")) <= 600
    # The signal method can be swallowed by asyncio's callback handler; the thread one cannot.
    assert pytestconfig.getini("timeout_method") == "thread"


def test_the_ci_hypothesis_profile_draws_the_same_examples_every_run() -> None:
    ci = hypothesis_settings.get_profile("ci")
    assert ci.derandomize
    assert ci.database is None  # nothing remembered from an earlier run changes the examples
    assert ci.print_blob
