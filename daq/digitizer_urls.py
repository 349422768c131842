"""Register the simulated DT5751 as the opener of `sim://` URLs: the one place where the program picks sim or real.

drivers/ never imports simulators/; `dig1://` opens the real board inside the driver, and this module
hands the driver the simulator for `sim://`. daq/__init__.py has register_simulated_dt5751() called as
soon as `drivers` is imported, so every front-end (run, scope, replay, GUI, doctor, dump-tree) sees the
same schemes, and commands that open no digitizer (--help, info, runs) do not load the drivers.
"""

from __future__ import annotations

from typing import Any


def _open_simulator(url: str, **options: Any) -> Any:
    from simulators.dt5751 import connect  # loaded on the first sim:// open only

    return connect(url, **options)


def register_simulated_dt5751() -> None:
    """Make `sim://dt5751?...` URLs open the device-tree simulator (options: physics, faults, clock, replay...)."""
    # imported here, not at the top: `import daq` loads no drivers (daq/__init__.py)
    from drivers import FelibError, register_url_scheme

    register_url_scheme("sim", _open_simulator, (FelibError,), "simulated")
