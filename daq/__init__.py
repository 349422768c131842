"""Run control of the CLOVERS test stand: configuration, acquisition, writer, slow control, CLI."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class _RegisterSimulatorWithDrivers:
    """Register sim:// (daq/digitizer_urls.py) right after `drivers` is imported, by whoever imports it.

    Every front-end that opens a digitizer imports `drivers`, so it finds sim:// registered, while
    `daq --help`, `daq info` and `daq runs` skip the drivers' numpy and pydantic (about 0.2 s).
    """

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "drivers":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)  # found by the other finders, as without this one
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            execute(module)
            from daq.digitizer_urls import register_simulated_dt5751

            register_simulated_dt5751()

        spec.loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


if "drivers" in sys.modules:
    from daq.digitizer_urls import register_simulated_dt5751

    register_simulated_dt5751()  # sim:// opens the DT5751 simulator for every front-end
else:
    sys.meta_path.insert(0, _RegisterSimulatorWithDrivers())
