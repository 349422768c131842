"""Register the simulated DT5751 as the opener of `sim://` URLs: the one place where the program picks sim or real.

drivers/ never imports simulators/; `dig1://` opens the real board inside the driver, and this module
hands the driver the simulator for `sim://`. Every front-end (run, scope, replay, GUI, doctor,
dump-tree) opens its digitizer through open_digitizer() or connect_digitizer_node() here, which register
sim:// first, so all see the same schemes; commands that open no digitizer (--help, info, runs) do not
load the drivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drivers import Dt5751


def _open_simulator(url: str, **options: Any) -> Any:
    from simulators.dt5751 import connect  # loaded on the first sim:// open only

    return connect(url, **options)


def register_simulated_dt5751() -> None:
    """Make `sim://dt5751?...` URLs open the device-tree simulator (options: physics, faults, clock, replay...)."""
    # imported here, not at the top: `import daq` loads no drivers
    from drivers import FelibError, register_url_scheme

    register_url_scheme("sim", _open_simulator, (FelibError,), "simulated")


def open_digitizer(url: str, **options: Any) -> Dt5751:
    """Dt5751.open(url, **options) with sim:// registered: how daq opens every digitizer."""
    register_simulated_dt5751()
    from drivers import Dt5751

    return Dt5751.open(url, **options)


def connect_digitizer_node(url: str, **options: Any) -> tuple[Any, tuple[type[BaseException], ...]]:
    """The board's FELib root node and its error types (drivers.connect_node), with sim:// registered."""
    register_simulated_dt5751()
    from drivers import connect_node

    return connect_node(url, **options)
