"""Start-up of the `daq` command: --help, --version, info and runs import nothing heavy they do not use.

Structural checks in a fresh interpreter (which modules got imported), never timings; the figures are in
bench/bench_startup.py.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from daq.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numba", "scipy", "lmfit", "matplotlib", "PyQt6", "pyqtgraph", "uproot", "awkward", "h5py", "serial")
_PROBE = """
import sys
from daq.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("EXIT", code)
print("LOADED", " ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _loaded(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    lines = done.stdout.splitlines()
    assert "EXIT 0" in lines or "EXIT None" in lines, done.stdout + done.stderr
    return set(lines[-1].split()[1:]) & set(HEAVY)


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    cfg = folder.parent / "run.yaml"
    cfg.write_text(
        (ROOT / "config/run.yaml").read_text().replace("slow_control: true", "slow_control: false")
    )
    assert (
        main(["run", "--config", str(cfg), "--events", "20", "--sim-rate", "max", "--output", str(folder)])
        == 0
    )
    return folder / "run_000001.h5"


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("run", "--help"), ("runs", "--help")])
def test_help_and_version_import_nothing_heavy(argv: tuple[str, ...]) -> None:
    assert _loaded(*argv) == set()


def test_info_and_runs_import_h5py_only(run_file: Path) -> None:
    assert _loaded("info", str(run_file)) == {"h5py"}
    assert _loaded("runs", str(run_file.parent)) == {"h5py"}


def test_analyze_help_still_lists_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--help"])
    assert exc.value.code == 0 and "--spe-window" in capsys.readouterr().out


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"daq (clovers-daq) {version('clovers-daq')}"


def test_a_driver_error_is_still_one_line_without_importing_it_in_cli(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """DigitizerError, which cli.py no longer imports, still exits 2 with one line (here: no CAEN FELib)."""
    assert main(["scope", "--url", "dig1://caen.internal/usb?link_num=99", "--events", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("daq scope: Cannot open the DT5751 at dig1://") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_import_daq_is_light_and_daq_opens_sim_urls_through_digitizer_urls() -> None:
    """`import daq` loads no drivers (nor numpy); daq's opener registers sim:// before it opens a board."""
    probe = (
        "import sys, daq; light = 'drivers' not in sys.modules and 'numpy' not in sys.modules; "
        "from drivers.dt5751_urls import registered_schemes; before = registered_schemes(); "
        "from daq.digitizer_urls import open_digitizer; board = open_digitizer('sim://dt5751?pace=max'); "
        "print(light, before, registered_schemes(), board.model); board.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "True ('dig1',) ('dig1', 'sim') DT5751", done.stderr
