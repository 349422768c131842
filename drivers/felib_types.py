"""FELib error codes, data types and the node interface shared by the DT5751 driver and its simulator.

These mirror `caen_felib.error.ErrorCode`, `caen_felib.device.DataType` and the methods of
`caen_felib.device.Node` (caen-felib 1.4.0) so that code which must not import `caen_felib`
(the simulator, the tests, a machine without CAEN's libraries) speaks the same language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any, Protocol

import numpy as np


class ErrorCode(IntEnum):
    """Return codes of CAEN FELib (CAEN_FELib_ErrorCode), same values as caen_felib.error.ErrorCode."""

    SUCCESS = 0
    GENERIC_ERROR = -1
    INVALID_PARAM = -2
    DEVICE_ALREADY_OPEN = -3
    DEVICE_NOT_FOUND = -4
    MAX_DEVICES_ERROR = -5
    COMMAND_ERROR = -6
    INTERNAL_ERROR = -7
    NOT_IMPLEMENTED = -8
    INVALID_HANDLE = -9
    DEVICE_LIBRARY_NOT_AVAILABLE = -10
    TIMEOUT = -11
    STOP = -12
    DISABLED = -13
    BAD_LIBRARY_VERSION = -14
    COMMUNICATION_ERROR = -15


class FelibError(RuntimeError):
    """An FELib call failed: the simulator's twin of caen_felib.error.Error (`.code`, `.func`)."""

    def __init__(self, message: str, code: ErrorCode, func: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.func = func


# FELib data type names (caen_felib.device.DataType values) -> numpy dtypes.
DATA_TYPES: dict[str, np.dtype[Any]] = {
    "U8": np.dtype(np.uint8),
    "U16": np.dtype(np.uint16),
    "U32": np.dtype(np.uint32),
    "U64": np.dtype(np.uint64),
    "I8": np.dtype(np.int8),
    "I16": np.dtype(np.int16),
    "I32": np.dtype(np.int32),
    "I64": np.dtype(np.int64),
    "CHAR": np.dtype("S1"),
    "BOOL": np.dtype(np.bool_),
    "SIZE_T": np.dtype(np.uintp),
    "PTRDIFF_T": np.dtype(np.intp),
    "FLOAT": np.dtype(np.float32),
    "DOUBLE": np.dtype(np.float64),
    "LONG DOUBLE": np.dtype(np.longdouble),
}


class DataField(Protocol):
    """One field returned by set_read_data_format: a name and a numpy array FELib overwrites."""

    name: str

    @property
    def value(self) -> np.ndarray: ...


class FelibNode(Protocol):
    """The part of caen_felib.device.Node that the DT5751 driver uses."""

    def get_value(self, path: str | None = None) -> str: ...

    def set_value(self, path: str | None, value: str) -> None: ...

    def send_command(self, path: str | None = None) -> None: ...

    def get_node(self, path: str | None = None) -> FelibNode: ...

    def get_child_nodes(self, path: str | None = None) -> Sequence[FelibNode]: ...

    @property
    def name(self) -> str: ...

    def get_user_register(self, address: int) -> int: ...

    def set_read_data_format(self, fmt: Sequence[Mapping[str, Any]]) -> tuple[DataField, ...]: ...

    def read_data(self, timeout: int, data: Sequence[DataField]) -> None: ...

    def close(self) -> None: ...
