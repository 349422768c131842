"""A FELib root node that plays a transcript: each call must match the next expected (call, path, value).

Replies are scripted per step; a step may raise an FELib error code instead. assert_done() fails
if any step is left unused, so a test proves the driver sent exactly these calls in this order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivers.felib_types import DATA_TYPES, ErrorCode, FelibError


@dataclass
class Step:
    """One expected call: kind (get, set, cmd, children, node, format, read, register), path, value, reply."""

    kind: str
    path: str = ""
    value: Any = None
    reply: Any = None
    error: ErrorCode | None = None


@dataclass
class _Field:
    name: str
    array: np.ndarray

    @property
    def value(self) -> np.ndarray:
        return self.array


@dataclass
class _Named:
    name: str


@dataclass
class Transcript:
    """The expected calls, consumed in order."""

    steps: list[Step]
    position: int = 0
    log: list[str] = field(default_factory=list)

    def take(self, kind: str, path: str = "", value: Any = None) -> Step:
        where = f"call {self.position + 1}: {kind} {path} {value!r}"
        assert self.position < len(self.steps), (
            f"unexpected extra {where}; transcript has {len(self.steps)} steps"
        )
        step = self.steps[self.position]
        self.position += 1
        self.log.append(where)
        assert (step.kind, step.path.lower()) == (kind, path.lower()), (
            f"{where} does not match expected {step.kind} {step.path} {step.value!r}"
        )
        if step.value is not None and kind != "format":
            assert value == step.value, f"{where}: expected value {step.value!r}"
        if step.error is not None:
            raise FelibError(f"scripted {step.error.name}", step.error, f"CAEN_FELib_{kind}")
        return step

    def assert_done(self) -> None:
        left = self.steps[self.position :]
        assert not left, f"{len(left)} transcript steps unused, first: {left[0]}"


class TranscriptNode:
    """A root node (or the scope endpoint) whose every call is checked against the transcript."""

    def __init__(self, transcript: Transcript, prefix: str = "") -> None:
        self._t = transcript
        self._prefix = prefix

    @property
    def name(self) -> str:
        return self._prefix.rsplit("/", 1)[-1]

    def get_value(self, path: str | None = None) -> str:
        return str(self._t.take("get", self._prefix + (path or "")).reply)

    def set_value(self, path: str | None, value: str) -> None:
        assert isinstance(value, str), f"FELib takes strings, got {value!r}"
        self._t.take("set", self._prefix + (path or ""), value)

    def send_command(self, path: str | None = None) -> None:
        self._t.take("cmd", self._prefix + (path or ""))

    def get_node(self, path: str | None = None) -> TranscriptNode:
        self._t.take("node", path or "")
        return TranscriptNode(self._t, self._prefix + (path or ""))

    def get_child_nodes(self, path: str | None = None) -> tuple[Any, ...]:
        step = self._t.take("children", self._prefix + (path or ""))
        return tuple(_Named(n) for n in step.reply)

    def get_user_register(self, address: int) -> int:
        return int(self._t.take("register", f"0x{address:04X}").reply)

    def set_read_data_format(self, fmt: Sequence[Mapping[str, Any]]) -> tuple[_Field, ...]:
        step = self._t.take("format", self._prefix, fmt)
        if step.value is not None:
            assert list(fmt) == step.value, f"data format {fmt} differs from {step.value}"
        return tuple(_Field(f["name"], np.zeros(f.get("shape", []), DATA_TYPES[f["type"]])) for f in fmt)

    def read_data(self, timeout: int, data: Sequence[_Field]) -> None:
        step = self._t.take("read", self._prefix)
        fields = {f.name: f.array for f in data}
        for name, value in step.reply.items():
            if name == "WAVEFORM":
                fields[name][...] = 0
                for row, samples in value.items():
                    fields[name][row, : len(samples)] = samples
            else:
                fields[name][...] = value

    def close(self) -> None:
        self._t.take("close")
