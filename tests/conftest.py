"""Fixtures for every test: the program's sim:// opener of the DT5751 is registered as daq registers it."""

from __future__ import annotations

import pytest

from daq.digitizer_urls import register_simulated_dt5751


@pytest.fixture(autouse=True, scope="session")
def _simulated_dt5751_urls() -> None:
    register_simulated_dt5751()
