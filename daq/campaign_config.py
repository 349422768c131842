"""A temperature-scan campaign file (scan.yaml): its steps and settings, validated before anything is touched."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daq.config import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepDefaults(_Strict):
    """What every step takes unless it says otherwise."""

    ramp_k_per_min: float = Field(default=2.0, ge=0, le=100)
    stable_band_k: float = Field(default=0.2, gt=0, le=10)
    stable_hold_s: float = Field(default=300.0, ge=0)
    stable_timeout_s: float = Field(default=6 * 3600.0, gt=0)
    events: int | None = Field(default=10_000, ge=1)
    duration_s: float | None = Field(default=None, gt=0)
    hv_v: float | None = Field(default=None, ge=-2000, le=2000)
    # simulated stand only: the cryocooler on or off for this step (None: as it is). With the cooler on the
    # 25 W heater holds the plate up to ~90 K at most; warmer points need it off (a warm-up held by the heater)
    cryocooler: Literal["on", "off"] | None = None
    # the Lake Shore 325's loop-1 heater range for this step (1 Low 2.5 W, 2 High 25 W; None: the run
    # configuration's cryostat.heater_range). At ~10 K the High range overshoots: hold it on Low
    heater_range: Literal[1, 2] | None = None


class CampaignStep(StepDefaults):
    """One point of the scan: go to temperature_k, wait stable (band, hold in instrument seconds), run."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.+-]+$")
    temperature_k: float = Field(ge=1.5, le=350)
    comment: str = ""

    @model_validator(mode="after")
    def _check_stop(self) -> CampaignStep:
        if self.events is None and self.duration_s is None:
            raise ValueError("give events or duration_s (a run without either never ends)")
        return self

    def fingerprint(self) -> str:
        """A short hash of what the step does (its comment aside): the journal refuses a changed step."""
        data = self.model_dump(mode="json", exclude={"comment"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class CampaignConfig(_Strict):
    """The whole scan file; relative paths are relative to the scan file's folder."""

    run_config: str = "run.yaml"  # the stand: instruments, digitizer, analysis (daq/config.py)
    output_dir: str = "campaign"  # journal.jsonl, runs/, report/
    on_failure: Literal["stop", "skip"] = "stop"
    reference_step: str | None = None  # LY(T) / LY(this step); None: the step nearest 77 K
    hv_off_at_end: bool = True
    run_overrides: dict[str, dict[str, Any]] = {}  # keys of run_config's sections replaced for the campaign
    defaults: StepDefaults = StepDefaults()
    steps: tuple[CampaignStep, ...] = Field(min_length=1)
    pairs: tuple[tuple[str, str], ...] = ()  # R_ly = LY(a) / LY(b): step names or run files

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        defaults = data.get("defaults") or {}
        steps = data.get("steps")
        if isinstance(defaults, dict) and isinstance(steps, list):
            data = dict(data)
            data["steps"] = [{**defaults, **s} if isinstance(s, dict) else s for s in steps]
        return data

    @model_validator(mode="after")
    def _check_names(self) -> CampaignConfig:
        names = [s.name for s in self.steps]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ValueError(f"step names must be unique; repeated: {', '.join(doubles)}")
        if self.reference_step is not None and self.reference_step not in names:
            raise ValueError(
                f"reference_step {self.reference_step!r} is not a step (steps: {', '.join(names)})"
            )
        for a, b in self.pairs:
            for name in (a, b):
                if name not in names and not name.endswith(".h5"):
                    raise ValueError(f"pairs: {name!r} is neither a step name nor a run file (*.h5)")
        return self

    def reference(self) -> str:
        """The step LY(T) is divided by: reference_step, or the step nearest 77 K."""
        if self.reference_step is not None:
            return self.reference_step
        return min(self.steps, key=lambda s: abs(s.temperature_k - 77.0)).name


def _describe(error: Any, data: Any) -> str:
    loc = list(error["loc"])
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        step = data["steps"][loc[1]] if isinstance(data.get("steps"), list) else None
        name = step.get("name") if isinstance(step, dict) else None
        loc[1] = f"{loc[1]}" + (f" ({name})" if name else "")
    where = ".".join(str(p) for p in loc) or "the file"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{where}'"
    if kind == "missing":
        return f"'{where}' is required but missing"
    return f"'{where}' = {error['input']!r} is not allowed: {error['msg']}"


def parse_campaign(data: Any, source: str = "<scan>") -> CampaignConfig:
    """Validate loaded YAML; raise ConfigError naming `source`, the field (with the step's name) and the rule."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping (run_config, output_dir, steps, ...)")
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e, data) for e in exc.errors()]
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def load_campaign(path: str | Path) -> CampaignConfig:
    """Read and validate a scan file; raise ConfigError with one clear message."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: scan file not found (config/scan.yaml is an example)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the scan file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    return parse_campaign(data, str(p))


def resolve(scan_path: str | Path, relative: str) -> Path:
    """A path of the scan file, relative to the scan file's folder unless absolute."""
    p = Path(relative)
    return p if p.is_absolute() else Path(scan_path).resolve().parent / p
