"""Shared fixtures: live Flex API simulators on free loopback ports, with small data sets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from flex_simulator.config import SimulatorConfig
from flex_simulator.server import FlexSimulator
from flex_simulator.testing import running_simulator

SMALL = {"orders": 120, "devices": 250}


@pytest.fixture
def simulator() -> Iterator[FlexSimulator]:
    """A running simulator with 120 orders and 250 devices and default limits."""
    with running_simulator(**SMALL) as sim:
        yield sim


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., FlexSimulator]]:
    """Factory: ``make_simulator(rate_limit=3, ...)`` starts one; all stop at test end.

    Small data (120 orders, 250 devices) unless overridden; a ``config=`` keyword gives a base
    SimulatorConfig to override.
    """
    with ExitStack() as stack:

        def factory(config: SimulatorConfig | None = None, **overrides: Any) -> FlexSimulator:
            merged = {**SMALL, **overrides} if config is None else overrides
            return stack.enter_context(running_simulator(config, **merged))

        yield factory
