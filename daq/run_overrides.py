"""Command-line style overrides of a run configuration (events, duration, output, rate, run number, comment)."""

from __future__ import annotations

from daq.config import ConfigError, RunConfig, parse_sim_rate


def apply_overrides(
    config: RunConfig,
    events: int | None = None,
    duration_s: float | None = None,
    output_dir: str | None = None,
    sim_rate: str | None = None,
    run_number: int | None = None,
    comment: str | None = None,
) -> RunConfig:
    """Return `config` with the command-line overrides applied (validated like the file)."""
    data = config.model_dump()
    if comment is not None:
        data["run"]["comment"] = comment  # the writer stores run.comment as the root attribute `comment`
    if run_number is not None:
        data["run"]["run_number"] = run_number
    if events is not None:
        data["run"]["events"] = events if events > 0 else None
    if duration_s is not None:
        data["run"]["duration_s"] = duration_s
    if output_dir is not None:
        data["run"]["output_dir"] = output_dir
    if sim_rate is not None:
        if not config.digitizer.simulated:
            raise ConfigError(f"--sim-rate applies to a simulated digitizer, not to {config.digitizer.url}")
        rate_hz = parse_sim_rate(sim_rate)
        if rate_hz is None:
            data["simulation"]["pace"] = "max"
        else:
            data["simulation"]["rate_hz"] = rate_hz
            data["simulation"]["pace"] = "realtime"
    try:
        return RunConfig.model_validate(data)
    except Exception as exc:  # noqa: BLE001 - pydantic's message names the field
        raise ConfigError(f"command-line override: {exc}") from None
