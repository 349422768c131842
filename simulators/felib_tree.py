"""A device tree with CAEN FELib's node interface (caen_felib.device.Node), for simulated boards.

Names are case-insensitive, values are strings in and out, `/ch/0..3/par/X` sets a range,
attributes such as `/par/RECLEN/maxvalue` are readable, and failures raise FelibError with
FELib's error codes. The behaviour behind parameters, commands and endpoints is supplied by the
simulated board through callbacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from drivers.felib_types import DATA_TYPES, ErrorCode, FelibError


class NodeType(IntEnum):
    """Same values as caen_felib.device.NodeType."""

    PARAMETER = 0
    COMMAND = 1
    ATTRIBUTE = 3
    ENDPOINT = 4
    CHANNEL = 5
    DIGITIZER = 6
    FOLDER = 7


@dataclass
class ParameterSpec:
    """A parameter of the tree: its metadata (as in a device-tree dump) and current value."""

    name: str
    default: str
    datatype: str = "NUMBER"  # NUMBER or STRING
    access: str = "READ_WRITE"  # READ_WRITE or READ_ONLY
    minvalue: float | None = None
    maxvalue: float | None = None
    increment: float | None = None
    allowed: tuple[str, ...] = ()
    setinrun: bool = True
    uom: str = ""
    description: str = ""
    decimals: int = 0  # how the library formats numbers: '8001', '88.0'
    round_up: bool = False  # round to the increment upwards (RECLEN on the x751) instead of to nearest

    def normalise(self, text: str) -> str:
        """Validate `text` and return the value as the board stores and formats it; raise FelibError."""
        if self.allowed:
            upper = text.strip().upper()
            if upper not in self.allowed:
                raise FelibError(
                    f"invalid value '{text}' for {self.name}: allowed {', '.join(self.allowed)}",
                    ErrorCode.INVALID_PARAM,
                    "CAEN_FELib_SetValue",
                )
            return upper
        if self.datatype == "STRING":
            return text
        try:
            number = float(text)
        except ValueError:
            raise FelibError(
                f"invalid value '{text}' for {self.name}: not a number",
                ErrorCode.INVALID_PARAM,
                "CAEN_FELib_SetValue",
            ) from None
        if not np.isfinite(number):
            raise FelibError(
                f"invalid value '{text}' for {self.name}", ErrorCode.INVALID_PARAM, "CAEN_FELib_SetValue"
            )
        if self.increment:
            steps = number / self.increment
            steps = np.ceil(steps - 1e-9) if self.round_up else np.round(steps)
            number = float(steps * self.increment)
        if (self.minvalue is not None and number < self.minvalue) or (
            self.maxvalue is not None and number > self.maxvalue
        ):
            raise FelibError(
                f"value {text} for {self.name} out of range [{self.minvalue:g}, {self.maxvalue:g}] {self.uom}",
                ErrorCode.INVALID_PARAM,
                "CAEN_FELib_SetValue",
            )
        return f"{number:.{self.decimals}f}"

    def attributes(self) -> dict[str, str]:
        """The attribute children of a FELib parameter node, as strings."""

        def num(v: float | None) -> str:
            return "" if v is None else f"{v:g}"

        return {
            "accessmode": self.access,
            "datatype": self.datatype,
            "defaultvalue": self.default,
            "description": self.description,
            "minvalue": num(self.minvalue),
            "maxvalue": num(self.maxvalue),
            "increment": num(self.increment),
            "uom": self.uom,
            "setinrun": "TRUE" if self.setinrun else "FALSE",
            "allowedvalues": ",".join(self.allowed),
        }


@dataclass
class TreeNode:
    """One node of the tree."""

    name: str
    type: NodeType
    parent: TreeNode | None = None
    children: dict[str, TreeNode] = field(default_factory=dict)
    spec: ParameterSpec | None = None
    value: str = ""
    on_command: Callable[[], None] | None = None
    endpoint: Any = None  # an object with set_read_data_format / read_data / has_data

    def add(self, child: TreeNode) -> TreeNode:
        child.parent = self
        self.children[child.name.lower()] = child
        return child

    @property
    def path(self) -> str:
        parts = []
        node: TreeNode | None = self
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))


_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")


class SimulatedField:
    """One field of a data format: a named numpy array that read_data overwrites (like caen_felib Data)."""

    def __init__(self, name: str, type: str, dim: int = 0, shape: Sequence[int] = ()) -> None:
        self.name = name.upper()
        self.type = str(type)
        self.dim = dim
        self.shape = list(shape)
        self._value = np.zeros(self.shape, dtype=DATA_TYPES[self.type])

    @property
    def value(self) -> np.ndarray:
        return self._value

    def __str__(self) -> str:
        return self.name


class DeviceTree:
    """The tree of one simulated board, with the hooks that give it behaviour."""

    def __init__(self, root: TreeNode) -> None:
        self.root = root
        self.closed = False
        self.on_set: Callable[[TreeNode, str], None] = lambda node, value: None
        self.can_set: Callable[[TreeNode], None] = lambda node: None
        self.on_get: Callable[[TreeNode], str | None] = lambda node: None
        self.register_read: Callable[[int], int] = lambda address: 0
        self.register_write: Callable[[int, int], None] = lambda address, value: None
        self.fault: ErrorCode | None = None  # set to COMMUNICATION_ERROR to simulate a lost link
        self.fault_functions: set[str] = set()  # if given, only these FELib calls fail
        self.owner: Any = None  # the simulated board behind this tree

    def check_link(self, func: str) -> None:
        if self.closed:
            raise FelibError("invalid handle: the device is closed", ErrorCode.INVALID_HANDLE, func)
        if self.fault is not None and (not self.fault_functions or func in self.fault_functions):
            raise FelibError("communication error: no answer from the device", self.fault, func)

    def resolve(self, start: TreeNode, path: str | None, func: str) -> list[TreeNode]:
        """Return the node(s) at `path` relative to `start` (a list: range syntax selects several)."""
        self.check_link(func)
        text = (path or "").strip()
        nodes = [start]  # paths are relative to the node; a leading or trailing slash changes nothing
        for part in [p for p in text.split("/") if p]:
            matched: list[TreeNode] = []
            m = _RANGE.match(part)
            for node in nodes:
                if m:
                    lo, hi = int(m.group(1)), int(m.group(2))
                    names = [str(i) for i in range(lo, hi + 1)]
                else:
                    names = [part.lower()]
                for name in names:
                    child = node.children.get(name)
                    if child is None:
                        raise FelibError(
                            f"node '{part}' not found under '{node.path}' (path '{path}')",
                            ErrorCode.INVALID_PARAM,
                            func,
                        )
                    matched.append(child)
            nodes = matched
        return nodes

    def single(self, start: TreeNode, path: str | None, func: str) -> TreeNode:
        nodes = self.resolve(start, path, func)
        if len(nodes) != 1:
            raise FelibError(f"path '{path}' selects {len(nodes)} nodes", ErrorCode.INVALID_PARAM, func)
        return nodes[0]

    def get(self, node: TreeNode) -> str:
        if node.type is NodeType.ATTRIBUTE:
            return node.value
        if node.type is not NodeType.PARAMETER:
            raise FelibError(
                f"'{node.path}' is not a parameter", ErrorCode.INVALID_PARAM, "CAEN_FELib_GetValue"
            )
        live = self.on_get(node)
        return node.value if live is None else live

    def set(self, node: TreeNode, value: str) -> None:
        func = "CAEN_FELib_SetValue"
        if not isinstance(value, str):
            raise AttributeError(f"'{type(value).__name__}' object has no attribute 'encode'")
        if node.type is not NodeType.PARAMETER or node.spec is None:
            raise FelibError(f"'{node.path}' is not a parameter", ErrorCode.INVALID_PARAM, func)
        if node.spec.access == "READ_ONLY":
            raise FelibError(f"parameter '{node.path}' is read-only", ErrorCode.INVALID_PARAM, func)
        self.can_set(node)
        stored = node.spec.normalise(value)
        node.value = stored
        self.on_set(node, stored)

    def as_dict(self, node: TreeNode) -> dict[str, Any]:
        """The JSON-like device tree (get_device_tree)."""
        out: dict[str, Any] = {"name": node.name, "type": node.type.name}
        if node.type is NodeType.PARAMETER and node.spec is not None:
            attrs = node.spec.attributes()
            attrs["value"] = self.get(node)
            out.update({k: {"value": v} for k, v in attrs.items()})
        elif node.children:
            out.update({k: self.as_dict(c) for k, c in node.children.items()})
        return out


class SimulatedNode:
    """A handle on one node; the same calls and sugar as caen_felib.device.Node."""

    __slots__ = ("_tree", "_node")

    def __init__(self, tree: DeviceTree, node: TreeNode) -> None:
        object.__setattr__(self, "_tree", tree)
        object.__setattr__(self, "_node", node)

    def __setattr__(self, name: str, value: object) -> None:
        if name == "value":
            self.set_value(None, value)  # type: ignore[arg-type]
            return
        raise AttributeError(f"cannot assign '{name}' on a node: assign to .value instead")

    # --- FELib calls ---
    def get_node(self, path: str | None = None) -> SimulatedNode:
        return SimulatedNode(self._tree, self._tree.single(self._node, path, "CAEN_FELib_GetHandle"))

    def get_child_nodes(self, path: str | None = None) -> tuple[SimulatedNode, ...]:
        node = self._tree.single(self._node, path, "CAEN_FELib_GetChildHandles")
        return tuple(SimulatedNode(self._tree, c) for c in node.children.values())

    def get_parent_node(self, path: str | None = None) -> SimulatedNode:
        node = self._tree.single(self._node, path, "CAEN_FELib_GetParentHandle")
        return SimulatedNode(self._tree, node.parent or node)

    def get_value(self, path: str | None = None) -> str:
        return self._tree.get(self._tree.single(self._node, path, "CAEN_FELib_GetValue"))

    def get_value_with_arg(self, path: str | None, arg: str) -> str:
        return self.get_value(path)

    def set_value(self, path: str | None, value: str) -> None:
        for node in self._tree.resolve(self._node, path, "CAEN_FELib_SetValue"):
            self._tree.set(node, value)

    def send_command(self, path: str | None = None) -> None:
        func = "CAEN_FELib_SendCommand"
        for node in self._tree.resolve(self._node, path, func):
            if node.type is not NodeType.COMMAND or node.on_command is None:
                raise FelibError(f"'{node.path}' is not a command", ErrorCode.INVALID_PARAM, func)
            node.on_command()

    def get_user_register(self, address: int) -> int:
        self._tree.check_link("CAEN_FELib_GetUserRegister")
        return self._tree.register_read(address)

    def set_user_register(self, address: int, value: int) -> None:
        self._tree.check_link("CAEN_FELib_SetUserRegister")
        self._tree.register_write(address, value)

    def get_device_tree(self) -> dict[str, Any]:
        self._tree.check_link("CAEN_FELib_GetDeviceTree")
        return self._tree.as_dict(self._node)

    def get_impl_lib_version(self) -> str:
        return "sim-1.0"

    def _endpoint(self, func: str) -> Any:
        self._tree.check_link(func)
        if self._node.type is not NodeType.ENDPOINT or self._node.endpoint is None:
            raise FelibError(f"'{self._node.path}' is not an endpoint", ErrorCode.INVALID_PARAM, func)
        return self._node.endpoint

    def set_read_data_format(self, fmt: Sequence[Mapping[str, Any]]) -> tuple[SimulatedField, ...]:
        return self._endpoint("CAEN_FELib_SetReadDataFormat").set_read_data_format(fmt)

    def read_data(self, timeout: int, data: Sequence[SimulatedField]) -> None:
        self._endpoint("CAEN_FELib_ReadData").read_data(timeout, data)

    def has_data(self, timeout: int) -> None:
        self._endpoint("CAEN_FELib_HasData").has_data(timeout)

    def close(self) -> None:
        self._tree.closed = True

    # --- Python sugar, as in caen_felib ---
    @property
    def name(self) -> str:
        return self._node.name

    @property
    def type(self) -> NodeType:
        return self._node.type

    @property
    def path(self) -> str:
        return self._node.path

    @property
    def parent_node(self) -> SimulatedNode:
        return self.get_parent_node()

    @property
    def child_nodes(self) -> tuple[SimulatedNode, ...]:
        return self.get_child_nodes()

    @property
    def value(self) -> str:
        return self.get_value()

    @value.setter
    def value(self, value: str) -> None:
        self.set_value(None, value)

    def __call__(self) -> None:
        self.send_command()

    def __enter__(self) -> SimulatedNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[SimulatedNode]:
        yield from self.child_nodes

    def __getitem__(self, index: Any) -> SimulatedNode:
        return self.get_node(f"/{index}")

    def __getattr__(self, name: str) -> SimulatedNode:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimulatedNode) and other._node is self._node

    def __hash__(self) -> int:
        return id(self._node)

    def __repr__(self) -> str:
        return f"SimulatedNode({self.path})"

    @property
    def device(self) -> Any:
        """The simulated board behind this node (simulator-only; real FELib nodes have no such thing)."""
        return self._tree.owner
