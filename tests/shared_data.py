"""The lab's shared sample data (../shared beside the checkout), and the mark for tests that need it.

Outside CI a missing ../shared skips those tests; CI sets CLOVERS_REQUIRE_SHARED=1, so there they run and
fail loudly instead of skipping silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
WAVEDUMP_SIPM = SHARED / "data" / "wavedump" / "dt5751-sipm"
_REQUIRED = os.environ.get("CLOVERS_REQUIRE_SHARED") == "1"

needs_wavedump_sample = pytest.mark.skipif(
    not (WAVEDUMP_SIPM / "wave0.dat").exists() and not _REQUIRED,
    reason="../shared/data/wavedump is not beside the checkout",
)
