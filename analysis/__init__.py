"""Offline and online analysis of the CLOVERS waveforms: pure functions on arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis.run_reader import Run, open_run

__all__ = ["Run", "open_run"]


def __getattr__(name: str) -> Any:
    """Load the notebook API (`analysis.open_run`) on first use, so `import analysis` stays light."""
    if name in __all__:
        from analysis import run_reader

        return getattr(run_reader, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
