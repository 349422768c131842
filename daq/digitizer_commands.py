"""`daq digitizer dump-tree` and `daq digitizer compare-tree`: a board's FELib device tree as JSON, and diffs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from daq.device_tree import DUMP_FORMAT, compare_trees, flatten_tree, read_device_tree

IDENTITY_PARAMETERS = ("MODELNAME", "SERIALNUM", "FWTYPE", "ROC_FWVER", "AMC_FWVER", "NUMCH", "ADC_NBIT")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the dump-tree and compare-tree subcommands to the `daq digitizer` parser."""
    sub = parser.add_subparsers(dest="digitizer_command", required=True)
    dump = sub.add_parser(
        "dump-tree",
        help="write the board's whole FELib device tree (every node, value and attribute) as JSON",
        description="Open the digitizer at URL, read its device tree (get_device_tree, or a walk of the "
        "nodes) and write it to FILE with each node's path, type, value and attributes.",
    )
    dump.add_argument("url", help="dig1://caen.internal/usb?link_num=0, or sim://dt5751 for the simulator")
    dump.add_argument("--out", required=True, help="the JSON file to write, e.g. dt5751_sn1234_tree.json")
    compare = sub.add_parser(
        "compare-tree",
        help="list the differences between two device-tree dumps (exit 0: same, 1: different)",
        description="Compare parameter paths, datatypes, ranges, units and allowed values of two dumps "
        "(daq digitizer dump-tree files, or FELib get_device_tree JSON).",
    )
    compare.add_argument("a", help="first dump, e.g. the real board's")
    compare.add_argument("b", help="second dump, e.g. tests/drivers/fixtures/dt5751_sim_tree.json")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the chosen `daq digitizer` subcommand."""
    if args.digitizer_command == "dump-tree":
        return dump_tree(args.url, args.out, out)
    return compare_tree(args.a, args.b, out)


def _library_versions(root: Any, url: str) -> dict[str, str]:
    versions: dict[str, str] = {}
    if not url.lower().startswith("sim://"):
        import caen_felib  # the board is open, so the package and libCAEN_FELib.so load

        versions["caen_felib"] = str(caen_felib.__version__)
        versions["CAEN_FELib"] = str(caen_felib.lib.version)
    try:
        versions["impl"] = str(root.get_impl_lib_version())  # libCAEN_Dig1 (FELib >= 1.3)
    except Exception as exc:  # noqa: BLE001 - an old library raises NotImplementedError: record why
        versions["impl"] = f"unknown ({exc})"
    return versions


def _identity(root: Any) -> dict[str, str]:
    identity: dict[str, str] = {}
    for name in IDENTITY_PARAMETERS:
        try:
            identity[name.lower()] = str(root.get_value(f"/par/{name}"))
        except Exception:  # noqa: BLE001, S112 - a parameter this board does not have is simply left out
            continue
    return identity


def dump_tree(url: str, out_path: str | Path, out: TextIO | None = None) -> int:
    """Open the digitizer at `url`, write its device tree to `out_path` as JSON and print a summary.

    The file holds `nodes` ({path: {type, value, attributes}}, see daq.device_tree.flatten_tree),
    `raw` (the library's own JSON), the URL, time, library versions and the board's identity.
    Raises DigitizerError (board or library missing) or OSError (file).
    """
    from daq.digitizer_urls import connect_digitizer_node  # the driver (and numpy) load only here

    out = out or sys.stdout
    root, _errors = connect_digitizer_node(url)
    try:
        raw, method = read_device_tree(root)
        versions = _library_versions(root, url)
        identity = _identity(root)
    finally:
        root.close()
    nodes = flatten_tree(raw)
    document = {
        "format": DUMP_FORMAT,
        "url": url,
        "dumped_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "method": method,
        "libraries": versions,
        "identity": identity,
        "nodes": nodes,
        "raw": raw,
    }
    path = Path(out_path)
    if path.parent != Path():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    counts = {
        kind: sum(1 for r in nodes.values() if r["type"] == kind)
        for kind in ("PARAMETER", "COMMAND", "ENDPOINT")
    }
    board = " ".join(identity.get(k, "") for k in ("modelname", "serialnum")).strip() or "the board"
    print(
        f"{board} at {url}: {counts['PARAMETER']} parameters, {counts['COMMAND']} commands, "
        f"{counts['ENDPOINT']} endpoints ({method}) written to {path}",
        file=out,
    )
    return 0


def load_tree(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a dump-tree file, or a bare FELib get_device_tree JSON, into flattened records.

    Raises ValueError (naming the file) when it is not JSON or not a device tree.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not JSON ({exc}): give a file written by daq digitizer dump-tree"
        ) from None
    if not isinstance(document, Mapping):
        raise ValueError(f"{path} holds a JSON {type(document).__name__}, not a device tree")
    if document.get("format") == DUMP_FORMAT:
        return {str(k): dict(v) for k, v in document["nodes"].items()}
    nodes = flatten_tree(document)
    if not any(r["type"] == "PARAMETER" for r in nodes.values()):
        raise ValueError(f"{path} has no FELib parameters: it is not a device tree (daq digitizer dump-tree)")
    return nodes


def compare_tree(a_path: str | Path, b_path: str | Path, out: TextIO | None = None) -> int:
    """Print the differences between two dumps, one a line; return 0 when none, 1 otherwise."""
    out = out or sys.stdout
    a, b = load_tree(a_path), load_tree(b_path)
    differences = compare_trees(a, b, names=(Path(a_path).name, Path(b_path).name))
    for line in differences:
        print(line, file=out)
    n_params = sum(1 for r in a.values() if r["type"] == "PARAMETER")
    if differences:
        print(f"{len(differences)} differences ({n_params} parameters in {a_path})", file=out)
        return 1
    print(f"same parameters, ranges, units and allowed values ({n_params} parameters)", file=out)
    return 0
