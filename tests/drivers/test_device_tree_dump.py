"""The DT5751 device tree as JSON (`daq digitizer dump-tree`), and the simulator checked against saved dumps.

Every `*_tree.json` in tests/drivers/fixtures is compared with the live simulator's tree: the
simulator's own dump must match; a real board's dump dropped in there lists every difference.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from daq.cli import main
from daq.device_tree import compare_trees, flatten_tree, read_device_tree, walk_tree
from daq.digitizer_commands import load_tree
from drivers import connect_node

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SIM_FIXTURE = FIXTURES / "dt5751_sim_tree.json"
REGENERATE = f"daq digitizer dump-tree sim://dt5751 --out {SIM_FIXTURE.relative_to(FIXTURES.parents[2])}"


@pytest.fixture(scope="module")
def live_raw() -> dict[str, Any]:
    root, _errors = connect_node("sim://dt5751?seed=1")
    try:
        raw, method = read_device_tree(root)
    finally:
        root.close()
    assert method == "get_device_tree"
    return raw


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*_tree.json")), ids=lambda p: p.name)
def test_simulator_tree_matches_the_dump(fixture: Path, live_raw: dict[str, Any]) -> None:
    differences = compare_trees(flatten_tree(live_raw), load_tree(fixture), names=("simulator", fixture.name))
    hint = f" (if the simulator's change is intended: {REGENERATE})" if fixture == SIM_FIXTURE else ""
    assert differences == [], f"{len(differences)} differences{hint}:\n" + "\n".join(differences)


def test_sim_fixture_is_there_and_holds_the_dt5751() -> None:
    document = json.loads(SIM_FIXTURE.read_text())
    assert document["identity"]["modelname"] == "DT5751"
    assert sum(1 for r in document["nodes"].values() if r["type"] == "PARAMETER") >= 40


def test_dump_tree_writes_every_node_with_its_attributes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "tree.json"
    assert main(["digitizer", "dump-tree", "sim://dt5751?seed=2", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    document = json.loads(out.read_text())
    nodes = document["nodes"]
    reclen = nodes["/par/reclen"]
    assert reclen["type"] == "PARAMETER" and reclen["datatype"] == "NUMBER"
    assert reclen["accessmode"] == "READ_WRITE" and float(reclen["increment"]) == 7
    assert {"minvalue", "maxvalue", "uom", "value", "setinrun"} <= reclen.keys()
    assert nodes["/par/startmode"]["allowedvalues"] == [
        "START_MODE_SW",
        "START_MODE_S_IN",
        "START_MODE_FIRST_TRG",
    ]
    assert nodes["/ch/3/par/ch_dcoffset"]["type"] == "PARAMETER"
    assert nodes["/ch/3"]["type"] == "CHANNEL"
    assert {p for p, r in nodes.items() if r["type"] == "COMMAND"} == {
        f"/cmd/{c}"
        for c in (
            "reset",
            "calibrateadc",
            "armacquisition",
            "disarmacquisition",
            "sendswtrigger",
            "cleardata",
        )
    }
    assert nodes["/endpoint/scope"]["type"] == "ENDPOINT"
    assert document["raw"]["par"]["reclen"]  # the library's own JSON is kept beside the records
    assert document["identity"]["modelname"] == "DT5751" and document["libraries"]["impl"]


def test_walking_the_nodes_gives_the_same_tree(live_raw: dict[str, Any]) -> None:
    root, _errors = connect_node("sim://dt5751?seed=1")
    try:
        walked = flatten_tree(walk_tree(root))
    finally:
        root.close()
    dumped = flatten_tree(live_raw)
    assert compare_trees(walked, dumped) == []
    assert walked["/par/reclen"]["value"] == dumped["/par/reclen"]["value"]
    assert walked.keys() == dumped.keys()


def test_compare_lists_each_difference_once() -> None:
    sim = load_tree(SIM_FIXTURE)
    board = copy.deepcopy(sim)
    for ch in range(4):
        board[f"/ch/{ch}/par/ch_threshold"]["maxvalue"] = "16383"
    board["/ch/2/par/ch_dcoffset"]["increment"] = "0.0015"  # one channel only: its own line
    del board["/par/posttrg"]
    board["/par/extras_opt"] = {
        "type": "PARAMETER",
        "datatype": "STRING",
        "allowedvalues": ["EXTRAS_OPT_TT48"],
    }
    board["/par/startmode"]["allowedvalues"] = ["START_MODE_SW", "START_MODE_S_IN"]
    board["/par/numch"]["datatype"] = "NUMBER"
    board["/par/trg_sw_enable"]["allowedvalues"] = ["FALSE", "TRUE"]  # another order only: no difference
    board["/par/reclen"]["value"] = "406"  # values are settings, not differences
    increment = sim["/ch/2/par/ch_dcoffset"]["increment"]
    maximum = sim["/ch/0/par/ch_threshold"]["maxvalue"]
    assert compare_trees(sim, board, names=("sim", "board")) == [
        f"/ch/{{0,1,2,3}}/par/ch_threshold: maxvalue sim {maximum!r} != board '16383'",
        f"/ch/2/par/ch_dcoffset: increment sim {increment!r} != board '0.0015'",
        "/par/extras_opt: only in board (parameter)",
        f"/par/numch: datatype sim {sim['/par/numch']['datatype']!r} != board 'NUMBER'",
        "/par/posttrg: only in sim (parameter)",
        "/par/startmode: allowed values only in sim: START_MODE_FIRST_TRG",
    ]


def test_a_real_felib_json_is_read_like_the_simulator_tree() -> None:
    """FELib's own shape (handles, bare values, indexed allowed values, no node types), made up here."""
    real = {
        "handle": 1,
        "par": {
            "handle": 2,
            "reclen": {
                "accessmode": {"handle": 4, "value": "READ_WRITE"},
                "datatype": {"handle": 5, "value": "NUMBER"},
                "minvalue": {"handle": 6, "value": "14"},
                "maxvalue": {"handle": 7, "value": "1799994"},
                "increment": {"handle": 8, "value": "7"},
                "setinrun": {"handle": 9, "value": "false"},
                "handle": 3,
                "value": "8001",
            },
            "iolevel": {
                "accessmode": {"handle": 11, "value": "READ_WRITE"},
                "allowedvalues": {
                    "0": {"handle": 13, "value": "FPIOTYPE_NIM"},
                    "1": {"handle": 14, "value": "FPIOTYPE_TTL"},
                    "handle": 12,
                    "value": "2",
                },
                "datatype": {"handle": 15, "value": "STRING"},
                "handle": 10,
                "value": "FPIOTYPE_NIM",
            },
        },
        "cmd": {"handle": 20, "reset": {"description": {"handle": 22, "value": "Reset"}, "handle": 21}},
        "endpoint": {"handle": 30, "scope": {"handle": 31}},
    }
    nodes = flatten_tree(real)
    assert nodes["/par/reclen"] == {
        "type": "PARAMETER",
        "value": "8001",
        "accessmode": "READ_WRITE",
        "datatype": "NUMBER",
        "minvalue": "14",
        "maxvalue": "1799994",
        "increment": "7",
        "setinrun": "false",
    }
    assert nodes["/par/iolevel"]["allowedvalues"] == ["FPIOTYPE_NIM", "FPIOTYPE_TTL"]
    assert nodes["/cmd/reset"]["type"] == "COMMAND" and nodes["/endpoint/scope"]["type"] == "ENDPOINT"
    sim_shaped = {
        "name": "",
        "type": "DIGITIZER",
        "par": {
            "name": "par",
            "type": "FOLDER",
            "reclen": {
                "name": "RECLEN",
                "type": "PARAMETER",
                "accessmode": {"value": "READ_WRITE"},
                "datatype": {"value": "NUMBER"},
                "minvalue": {"value": "14"},
                "maxvalue": {"value": "1.79999e+06"},  # %g: equal to 6 significant digits
                "increment": {"value": "7"},
                "setinrun": {"value": "FALSE"},
                "uom": {"value": ""},
                "allowedvalues": {"value": ""},
                "value": {"value": "8001"},
            },
            "iolevel": {
                "name": "IOLEVEL",
                "type": "PARAMETER",
                "accessmode": {"value": "READ_WRITE"},
                "datatype": {"value": "STRING"},
                "allowedvalues": {"value": "FPIOTYPE_TTL,FPIOTYPE_NIM"},
                "value": {"value": "FPIOTYPE_TTL"},
            },
        },
        "cmd": {"name": "cmd", "type": "FOLDER", "reset": {"name": "RESET", "type": "COMMAND"}},
        "endpoint": {"name": "endpoint", "type": "FOLDER", "scope": {"name": "scope", "type": "ENDPOINT"}},
    }
    assert compare_trees(nodes, flatten_tree(sim_shaped)) == []


def test_compare_tree_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["digitizer", "compare-tree", str(SIM_FIXTURE), str(SIM_FIXTURE)]) == 0
    assert "same parameters" in capsys.readouterr().out
    document = json.loads(SIM_FIXTURE.read_text())
    document["nodes"]["/par/reclen"]["uom"] = "s"
    changed = tmp_path / "board_tree.json"
    changed.write_text(json.dumps(document))
    assert main(["digitizer", "compare-tree", str(SIM_FIXTURE), str(changed)]) == 1
    out = capsys.readouterr().out
    assert "/par/reclen: uom dt5751_sim_tree.json 'ns' != board_tree.json 's'" in out
    assert "1 differences" in out


@pytest.mark.parametrize("content", ["not json {", "[1, 2]", '{"a": {"b": 1}}'])
def test_a_file_that_is_not_a_tree_is_one_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["digitizer", "compare-tree", str(bad), str(SIM_FIXTURE)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
