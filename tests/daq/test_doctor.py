"""`daq doctor`: exit 0 for the simulated stand, 2 with the fix when a configuration needs what is missing."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest

from daq.cli import main
from daq.config import load_config
from daq.doctor import _asrl_device, _configured_ports
from daq.doctor_checks import disk_space, serial_port_checks, visa
from daq.doctor_instruments import slow_control_identities
from simulators.lakeshore325 import LakeShore325Simulator
from simulators.line_servers import PtyServer, TcpServer
from simulators.ndt1470 import Ndt1470Simulator

ROOT = Path(__file__).resolve().parents[2]
RUN_YAML = ROOT / "config" / "run.yaml"


def _felib_installed() -> bool:
    try:
        ctypes.CDLL("libCAEN_FELib.so")
    except OSError:
        return False
    return True


def _config_with(tmp_path: Path, **replace: str) -> Path:
    """config/run.yaml with lines replaced ({regex: new line}) and run files under tmp_path."""
    text = RUN_YAML.read_text()
    text = re.sub(r"(?m)^  output_dir: .*$", f"  output_dir: {tmp_path / 'runs'}", text)
    for pattern, line in replace.items():
        text, n = re.subn(pattern, line, text, flags=re.M)
        assert n == 1, pattern
    path = tmp_path / "doctor.yaml"
    path.write_text(text)
    return path


def _lines(text: str, status: str, name: str) -> list[str]:
    """The report's lines of this status whose check name starts with `name`."""
    return [line for line in text.splitlines() if line.startswith(f"{status:<8} {name}")]


def test_simulated_config_exits_0_with_caen_library_not_needed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--config", str(RUN_YAML)]) == 0
    out = capsys.readouterr().out
    if _felib_installed():
        assert _lines(out, "ok", "libCAEN_FELib.so")
    else:
        (line,) = _lines(out, "info", "libCAEN_FELib.so")
        assert "not needed" in line and "sim://dt5751" in line
    assert not [line for line in out.splitlines() if line.startswith("missing")]
    # the simulated instruments were started and asked who they are, through the drivers
    assert _lines(out, "ok", "DT5751 sim://dt5751") and "MODELNAME DT5751" in out
    assert "BDNAME NDT1470" in _lines(out, "ok", "NDT1470 simulator")[0]
    assert "MODEL325" in _lines(out, "ok", "Lake Shore 325 simulator")[0]
    assert _lines(out, "ok", "numba cache") and _lines(out, "ok", "h5py")
    assert out.splitlines()[-1].endswith("(exit 0)")


@pytest.mark.skipif(_felib_installed(), reason="CAEN FELib is installed on this machine")
def test_dig1_config_exits_2_naming_libcaen_felib_and_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_with(
        tmp_path, **{r"^  url: sim://dt5751.*$": "  url: dig1://caen.internal/usb?link_num=0"}
    )
    assert main(["doctor", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    (line,) = _lines(out, "missing", "libCAEN_FELib.so")
    assert "CAEN FELib" in line and "CAEN Dig1" in line and "https://www.caen.it/" in line
    assert _lines(out, "missing", "libCAEN_Dig1.so")
    assert _lines(out, "missing", "DT5751 dig1://caen.internal/usb?link_num=0")
    assert out.splitlines()[-1].endswith("(exit 2)")


def test_unreadable_config_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_with(tmp_path, **{r"^  batch_events: 256$": "  batch_event: 256"})  # a misspelt key
    assert main(["doctor", "--config", str(config)]) == 2
    (line,) = _lines(capsys.readouterr().out, "missing", "configuration")
    assert str(config) in line and "batch_event" in line


def test_disk_below_the_configured_minimum_is_missing(tmp_path: Path) -> None:
    assert disk_space(tmp_path / "runs", 1.0).status == "ok"
    short = disk_space(tmp_path / "runs", 1e12)  # 1 EB
    assert short.status == "missing" and "min_free_disk_mb" in short.detail and "output_dir" in short.fix


def test_configured_serial_ports_must_exist_and_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (gone,) = [c for c in serial_port_checks({str(tmp_path / "ttyACM7"): "hv.port"}) if "ttyACM7" in c.name]
    assert gone.status == "missing" and "does not exist" in gone.detail and "hv.port" in gone.fix
    device = tmp_path / "ttyUSB9"
    device.write_text("")
    monkeypatch.setattr(
        "daq.doctor_checks.os.access", lambda path, mode: False
    )  # as a user outside the group
    (denied,) = [c for c in serial_port_checks({str(device): "cryostat.resource"}) if "ttyUSB9" in c.name]
    assert denied.status == "missing" and "no read/write permission" in denied.detail
    assert "usermod -aG" in denied.fix and "log out" in denied.fix


def test_configured_ports_come_from_real_instrument_sections_only(tmp_path: Path) -> None:
    assert _asrl_device("ASRL/dev/ttyUSB0::INSTR") == "/dev/ttyUSB0"
    assert _asrl_device("ASRLsocket://127.0.0.1:5025::INSTR") is None
    assert _asrl_device("GPIB0::12::INSTR") is None
    assert _configured_ports(load_config(RUN_YAML)) == {}
    lab = load_config(ROOT / "config" / "lab.yaml")
    assert _configured_ports(lab) == {"/dev/ttyACM0": "hv.port", "/dev/ttyUSB0": "cryostat.resource"}


def test_gpib_resource_needs_a_gpib_backend() -> None:
    checks = {c.name: c for c in visa(True, True, "")}
    gpib = checks["GPIB backend"]
    if ctypes.util.find_library("gpib") is None:
        assert gpib.status == "missing" and "linux-gpib" in gpib.fix and "gpib-ctypes" in gpib.fix
    else:
        assert gpib.status in ("ok", "missing")
    assert {c.status for c in visa(True, False, "not GPIB") if c.name == "GPIB backend"} <= {"ok", "info"}


def test_real_sections_are_identified_over_a_pty_and_a_socket(tmp_path: Path) -> None:
    """hv.simulate false on a pty and cryostat.simulate false on a socket: the doctor's 'real' path."""
    config = load_config(RUN_YAML)
    with (
        PtyServer(Ndt1470Simulator(time_scale=20)) as hv_server,
        TcpServer(LakeShore325Simulator()) as ls_server,
    ):
        real = config.model_copy(
            update={
                "hv": config.hv.model_copy(update={"simulate": False, "port": hv_server.path}),
                "cryostat": config.cryostat.model_copy(
                    update={"simulate": False, "resource": f"ASRLsocket://{ls_server.address}::INSTR"}
                ),
            }
        )
        hv, ls = slow_control_identities(real)
    assert hv.status == "ok" and hv.name == f"NDT1470 {hv_server.path}" and "BDNAME NDT1470" in hv.detail
    assert ls.status == "ok" and "MODEL325" in ls.detail


def test_a_silent_hv_port_is_missing_not_a_traceback(tmp_path: Path) -> None:
    config = load_config(RUN_YAML)
    port = str(tmp_path / "ttyACM9")
    real = config.model_copy(update={"hv": config.hv.model_copy(update={"simulate": False, "port": port})})
    hv, _ls = slow_control_identities(real)
    assert hv.status == "missing" and port in hv.detail and "hv.port" in hv.detail
