"""Read a FELib device tree into flat per-path records and list the differences between two trees.

FELib's `get_device_tree()` returns nested JSON: one object per node keyed by its lower-case name,
every node and attribute with a `handle`, parameter attributes as `{"handle": h, "value": v}`, the
parameter's own value as a bare string and `allowedvalues` as indexed children (a real Dig1 dump:
delila-rs `docs/devtree_examples/dt5730b_psd1_sn990.json`). The simulator's tree names each node's
`type`, gives every attribute as `{"value": v}` and joins allowed values with commas; a tree walked
node by node (`walk_tree`) has the same shape as the simulator's. `flatten_tree` reads all three into
`{path: record}` so that `compare_trees` can set a real board's dump beside the simulator's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

DUMP_FORMAT = "clovers-device-tree-1"
_META_KEYS = frozenset({"handle", "name", "type", "value"})
ATTRIBUTE_NAMES = frozenset(
    {
        "accessmode",
        "allowedvalues",
        "datatype",
        "defaultvalue",
        "description",
        "expuom",
        "increment",
        "maxvalue",
        "minvalue",
        "multiplevalue",
        "setinrun",
        "uom",
    }
)
# What must agree between a board and its simulator (values and descriptions may differ).
COMPARED_FIELDS = (
    "datatype",
    "accessmode",
    "minvalue",
    "maxvalue",
    "increment",
    "uom",
    "expuom",
    "setinrun",
    "allowedvalues",
)
_NUMERIC_FIELDS = frozenset({"minvalue", "maxvalue", "increment", "expuom"})
NUMBER_REL_TOL = 1e-5  # the simulator prints ranges with %g: equal to 6 significant digits is equal
_COMPARED_TYPES = frozenset({"PARAMETER", "COMMAND", "ENDPOINT"})
_CHANNEL_PATH = re.compile(r"^/ch/(\d+)(/.*)?$")


def walk_tree(node: Any) -> dict[str, Any]:
    """Return the tree below `node` by visiting every child node (for a library without get_device_tree).

    node: a caen_felib.device.Node or a simulated node (name, type, get_child_nodes, get_value).
    Values that cannot be read (write-only parameters, commands, folders) are left out.
    """
    out: dict[str, Any] = {"name": node.name, "type": _type_name(node.type)}
    if out["type"] in ("PARAMETER", "ATTRIBUTE"):
        try:
            out["value"] = node.get_value()
        except Exception:  # noqa: BLE001 - a write-only parameter: FELib raises, the dump just has no value
            pass
    for child in node.get_child_nodes():
        out[str(child.name).lower()] = walk_tree(child)
    return out


def read_device_tree(root: Any) -> tuple[dict[str, Any], str]:
    """Return (the raw tree, how it was read): get_device_tree() in one call, or a walk of the child nodes."""
    getter = getattr(root, "get_device_tree", None)
    if getter is not None:
        try:
            return getter(), "get_device_tree"
        except NotImplementedError:  # caen_felib's stub when the C library is too old
            pass
    return walk_tree(root), "walk"


def _type_name(kind: Any) -> str:
    return str(getattr(kind, "name", kind)).upper()


def _attribute(name: str, entry: Any) -> Any:
    if name == "allowedvalues":
        return _allowed_values(entry)
    value = entry.get("value") if isinstance(entry, Mapping) else entry
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None  # the simulator writes '' for an attribute a real tree leaves out


def _allowed_values(entry: Any) -> list[str]:
    if isinstance(entry, Mapping):
        indexed = {k: v for k, v in entry.items() if str(k).isdigit()}
        if indexed:  # FELib: {"0": {"value": "FALSE"}, "1": {...}, "handle": h, "value": "2"}
            return [str(_attribute("", indexed[k])) for k in sorted(indexed, key=int)]
        entry = entry.get("value", "")
    if isinstance(entry, list):
        return [str(v) for v in entry]
    return [v for v in str(entry or "").split(",") if v]  # the simulator: "TRUE,FALSE"


def _infer_type(path: str, node: Mapping[str, Any]) -> str:
    if path == "/":
        return "DIGITIZER"
    if _CHANNEL_PATH.match(path) and path.count("/") == 2:
        return "CHANNEL"
    parent, _, name = path.rpartition("/")
    if parent == "/cmd" or ("setinrun" in node and "datatype" not in node):
        return "COMMAND"
    if parent == "/endpoint" and name != "par":
        return "ENDPOINT"
    return "FOLDER"


def flatten_tree(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return {path: record} for every node of a raw tree (FELib JSON, the simulator's, or walk_tree's).

    Paths are lower case ('/par/reclen', '/ch/0/par/ch_dcoffset'). A record holds `type`
    (PARAMETER, COMMAND, ENDPOINT, CHANNEL, FOLDER, DIGITIZER), for parameters `value` where readable
    and each attribute present (`allowedvalues` as a list of strings, the others as strings).
    """
    records: dict[str, dict[str, Any]] = {}
    _visit(raw, "/", records)
    return records


def _visit(node: Mapping[str, Any], path: str, records: dict[str, dict[str, Any]]) -> None:
    children = {str(k).lower(): v for k, v in node.items() if k not in _META_KEYS and isinstance(v, Mapping)}
    declared = _type_name(node["type"]) if isinstance(node.get("type"), str) else ""
    if declared == "PARAMETER" or (not declared and ("datatype" in children or "accessmode" in children)):
        record: dict[str, Any] = {"type": "PARAMETER"}
        value = node.get("value")
        if isinstance(value, Mapping):
            value = value.get("value")
        if value is not None:
            record["value"] = str(value)
        for name, entry in sorted(children.items()):
            attr = _attribute(name, entry)
            if attr is not None and attr != []:
                record[name] = attr
        records[path] = record
        return
    record = {"type": declared or _infer_type(path, children)}
    if record["type"] == "COMMAND":
        for name in ("description", "setinrun"):
            attr = _attribute(name, children.get(name))
            if attr is not None:
                record[name] = attr
        records[path] = record
        return
    records[path] = record
    for name, child in sorted(children.items()):
        _visit(child, f"{path.rstrip('/')}/{name}", records)


def _same(field: str, a: Any, b: Any) -> bool:
    if field == "allowedvalues":
        return set(a or []) == set(b or [])  # the order of the list means nothing to the board
    if a is None or b is None:
        return a is None and b is None
    if field in _NUMERIC_FIELDS:
        try:
            x, y = float(a), float(b)
        except ValueError:
            return str(a) == str(b)
        return math.isclose(x, y, rel_tol=NUMBER_REL_TOL, abs_tol=1e-12)
    return str(a).casefold() == str(b).casefold()  # TRUE/true, READ_WRITE/read_write


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return repr(value)


def _field_difference(field: str, a: Any, b: Any, names: tuple[str, str]) -> str:
    if field == "allowedvalues":
        la, lb = list(a or []), list(b or [])
        only_a = [v for v in la if v not in lb]
        only_b = [v for v in lb if v not in la]
        if {v.casefold() for v in la} == {v.casefold() for v in lb}:
            return f"allowed values differ in letter case: {names[0]} {_show(la)}, {names[1]} {_show(lb)}"
        parts = []
        if only_a:
            parts.append(f"only in {names[0]}: {', '.join(only_a)}")
        if only_b:
            parts.append(f"only in {names[1]}: {', '.join(only_b)}")
        return "allowed values " + "; ".join(parts)
    return f"{field} {names[0]} {_show(a)} != {names[1]} {_show(b)}"


def compare_trees(
    a: Mapping[str, Mapping[str, Any]],
    b: Mapping[str, Mapping[str, Any]],
    names: tuple[str, str] = ("A", "B"),
) -> list[str]:
    """List every difference between two flattened trees (flatten_tree); [] when they agree.

    Compared: the paths of parameters, commands and endpoints, each common node's type, and for
    parameters datatype, access mode, range (min, max, increment, to 6 significant digits), unit,
    set-in-run and allowed values (in any order). Current values and descriptions are not compared. Differences
    that are the same on several channels are reported once as /ch/{0,1,2,3}/...
    """
    lines: list[tuple[str, str]] = []
    for path in sorted(set(a) | set(b)):
        ra, rb = a.get(path), b.get(path)
        if ra is None or rb is None:
            present = ra if ra is not None else rb
            assert present is not None
            if present.get("type") in _COMPARED_TYPES:
                where = names[0] if ra is not None else names[1]
                lines.append((path, f"only in {where} ({str(present['type']).lower()})"))
            continue
        if ra.get("type") != rb.get("type"):
            lines.append((path, f"type {names[0]} {ra.get('type')} != {names[1]} {rb.get('type')}"))
            continue
        if ra.get("type") != "PARAMETER":
            continue
        for field in COMPARED_FIELDS:
            if not _same(field, ra.get(field), rb.get(field)):
                lines.append((path, _field_difference(field, ra.get(field), rb.get(field), names)))
    return _merge_channels(lines)


def _merge_channels(lines: list[tuple[str, str]]) -> list[str]:
    """Report a difference found identically on several channels once, as /ch/{0,1}/rest."""
    grouped: dict[tuple[str, str], list[int]] = {}
    order: list[tuple[str, str]] = []
    for path, text in lines:
        m = _CHANNEL_PATH.match(path)
        key = (f"/ch/{{}}{m.group(2) or ''}", text) if m else (path, text)
        if key not in grouped:
            grouped[key] = []
            order.append(key)
        if m:
            grouped[key].append(int(m.group(1)))
    out = []
    for key in order:
        template, text = key
        channels = grouped[key]
        path = (
            template.format(
                "{" + ",".join(map(str, sorted(channels))) + "}" if len(channels) > 1 else channels[0]
            )
            if channels
            else template
        )
        out.append(f"{path}: {text}")
    return out
