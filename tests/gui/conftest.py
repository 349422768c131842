"""The GUI tests run offscreen: on a machine without a display (CI, ssh) Qt would abort at the first window,
and on a desktop no windows pop up. QT_QPA_PLATFORM set by the caller wins (e.g. xcb to watch them)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt's qapp creates the QApplication
