"""Small shared pieces of the panels: labelled values, buttons, group boxes."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton, QWidget


def button(text: str, slot: Callable[[], None], tip: str = "") -> QPushButton:
    b = QPushButton(text)
    b.clicked.connect(slot)
    if tip:
        b.setToolTip(tip)
    return b


class ValueGrid(QGroupBox):
    """A titled grid of "name: value" rows whose values are set by key."""

    def __init__(self, title: str, names: list[str], parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        grid = QGridLayout(self)
        self.values: dict[str, QLabel] = {}
        for row, name in enumerate(names):
            grid.addWidget(QLabel(name), row, 0)
            value = QLabel("-")
            value.setObjectName(name)
            grid.addWidget(value, row, 1)
            self.values[name] = value

    def set(self, name: str, text: str, style: str = "") -> None:
        label = self.values[name]
        if label.text() != text:
            label.setText(text)
        if label.styleSheet() != style:
            label.setStyleSheet(style)


ALARM = "color: white; background: #c0392b; font-weight: bold"
GOOD = "color: #1e8449; font-weight: bold"
WARN = "color: #b9770e; font-weight: bold"
