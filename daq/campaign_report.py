"""The campaign report: the full offline analysis of each step's run, LY(T) table, plot (PNG, PDF), JSON, R_ly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.characterise import RunAnalysis, light_yield_ratio
from analysis.report import run_json
from analysis.spe_fit import Measured
from daq.campaign_config import CampaignConfig, load_campaign
from daq.campaign_fit import BorrowedQspe, fit_run, fit_summary, own_q_spe_problem
from daq.campaign_journal import JOURNAL_NAME, JournalError, StepRecord, read_journal
from simulators.csi_crystal import light_yield_scale

REPORT_DIR = "report"


@dataclass
class StepResult:
    record: StepRecord
    analysis: RunAnalysis | None
    summary: dict[str, Any]

    @property
    def light_yield(self) -> Measured | None:
        a = self.analysis
        return a.headline_method.light_yield if a is not None and a.methods else None


def _borrow_nearest(results: list[StepResult], target_k: float) -> BorrowedQspe | None:
    """The Qspe of the self-calibrated step nearest in temperature."""
    own = [r for r in results if r.summary.get("q_spe_own") and r.summary.get("q_spe_adc_ns")]
    if not own:
        return None
    best = min(own, key=lambda r: abs(r.record.data["temperature_k"] - target_k))
    return BorrowedQspe(
        best.summary["q_spe_adc_ns"], f"step {best.record.step} (run {best.record.data.get('run_number')})"
    )


def analyse_steps(directory: Path, records: list[StepRecord]) -> list[StepResult]:
    """Analyse every done step's run: first those that calibrate themselves, then the others with a borrowed Qspe."""
    results: list[StepResult] = []
    for record in records:
        if record.status != "done" or not record.run_file:
            continue
        a = fit_run(directory / record.run_file, None)
        results.append(StepResult(record, a, fit_summary(a)))
    for r in results:
        if r.analysis is not None and own_q_spe_problem(r.analysis):
            borrowed = _borrow_nearest(results, r.record.data["temperature_k"])
            if borrowed is not None:
                r.analysis = fit_run(directory / r.record.run_file, borrowed)  # type: ignore[operator]
                r.summary = fit_summary(r.analysis)
    return results


def ly_table(scan: CampaignConfig, results: list[StepResult]) -> tuple[list[dict[str, Any]], str]:
    """One row per step (LY, LY / LY(reference), FWHM, Qspe and its source), and the text table."""
    ref_name = scan.reference()
    ref = next((r for r in results if r.record.step == ref_name), None)
    ref_ly = ref.light_yield if ref is not None else None
    rows = []
    for r in results:
        ly, s = r.light_yield, r.summary
        ratio = light_yield_ratio(ly, ref_ly) if ly is not None and ref_ly is not None else None
        crystal_k = s.get("crystal_k")
        model = None
        if r.record.data.get("simulated") and crystal_k and ref is not None and ref.summary.get("crystal_k"):
            model = light_yield_scale(crystal_k) / light_yield_scale(ref.summary["crystal_k"])
        rows.append({
            "step": r.record.step, "setpoint_k": r.record.data["temperature_k"], "crystal_k": crystal_k,
            "run_number": r.record.data.get("run_number"), "run_file": r.record.run_file, "events": s["events"],
            "q_spe_adc_ns": s["q_spe_adc_ns"], "q_spe_source": s["q_spe_source"],
            "ly_pe_per_kevee": s["ly_pe_per_kevee"], "ly_error": s["ly_error"],
            "ly59_pe_per_kevee": s["ly59_pe_per_kevee"], "fwhm59_percent": s["fwhm59_percent"],
            "ly_over_reference": ratio.value if ratio else None, "ratio_error": ratio.error if ratio else None,
            "simulator_model_ratio": model, "comment": r.record.data.get("comment", ""), "error": s["error"],
        })  # fmt: skip
    head = (
        f"{'step':>10} {'T set':>7} {'T xtal':>8} {'run':>5} {'events':>7} {'Qspe':>6} {'LY PE/keVee':>14} "
    )
    head += f"{'LY/LY(' + ref_name + ')':>16} {'model':>6} {'FWHM %':>7}"
    lines = [head]
    for row in rows:
        ly = f"{row['ly_pe_per_kevee']:.2f}±{row['ly_error']:.2f}" if row["ly_pe_per_kevee"] else "-"
        ratio = (
            f"{row['ly_over_reference']:.4f}±{row['ratio_error']:.4f}" if row["ly_over_reference"] else "-"
        )
        model = f"{row['simulator_model_ratio']:.4f}" if row["simulator_model_ratio"] else "-"
        q = (
            f"{row['q_spe_adc_ns']:.2f}" + ("*" if "borrowed" in row["q_spe_source"] else "")
            if row["q_spe_adc_ns"]
            else "-"
        )
        fwhm = f"{row['fwhm59_percent']:.1f}" if row["fwhm59_percent"] else "-"
        xtal = f"{row['crystal_k']:.2f}" if row["crystal_k"] else "-"
        lines.append(f"{row['step']:>10} {row['setpoint_k']:>7.1f} {xtal:>8} {row['run_number'] or '-':>5} "
                     f"{row['events']:>7} {q:>6} {ly:>14} {ratio:>16} {model:>6} {fwhm:>7}")  # fmt: skip
    if any("borrowed" in row["q_spe_source"] for row in rows):
        lines.append(
            "* Qspe borrowed from the nearest self-calibrated step (too little late light: none, or an error above 2 %)"
        )
    return rows, "\n".join(lines)


def pair_ratios(scan: CampaignConfig, directory: Path, results: list[StepResult]) -> list[dict[str, Any]]:
    """R_ly = LY(a) / LY(b) of each configured pair (step names, or run files analysed here)."""
    by_step = {r.record.step: r for r in results}
    out = []
    for a_name, b_name in scan.pairs:
        lys, error = [], ""
        for name in (a_name, b_name):
            if name in by_step:
                lys.append(by_step[name].light_yield)
            else:
                path = Path(name) if Path(name).is_absolute() else directory / name
                lys.append(fit_run(path, None).headline_method.light_yield if path.exists() else None)
                if not path.exists():
                    error = f"{path}: no such run file"
        if lys[0] is None or lys[1] is None:
            out.append({"a": a_name, "b": b_name, "r_ly": None, "error": None,
                        "note": error or "a run of the pair has no light yield (a failed fit or a step not done)"})  # fmt: skip
            continue
        r = light_yield_ratio(lys[0], lys[1])
        out.append({"a": a_name, "b": b_name, "r_ly": r.value, "error": r.error, "note": ""})
    return out


def plot_ly_vs_t(rows: list[dict[str, Any]], reference: str, path: Path) -> list[Path]:
    """LY(T) and LY(T)/LY(reference) (with the simulator's model where the runs were simulated), PNG and PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    pts = [r for r in rows if r["ly_pe_per_kevee"] and r["crystal_k"]]
    if not pts:
        return []
    t = np.array([r["crystal_k"] for r in pts])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, height_ratios=(1, 1))
    ax1.errorbar(
        t, [r["ly_pe_per_kevee"] for r in pts], yerr=[r["ly_error"] for r in pts], fmt="o", capsize=3
    )
    ax1.set_ylabel("LY (PE/keVee)")
    ax1.set_title("Light yield versus temperature (campaign)", fontsize=10)
    rat = [r for r in pts if r["ly_over_reference"]]
    ax2.errorbar([r["crystal_k"] for r in rat], [r["ly_over_reference"] for r in rat],
                 yerr=[r["ratio_error"] for r in rat], fmt="o", capsize=3, label="measured")  # fmt: skip
    if any(r["simulator_model_ratio"] for r in rat):
        ref_row = next((r for r in rows if r["step"] == reference), None)
        if ref_row and ref_row["crystal_k"]:
            grid = np.linspace(max(3.0, t.min() * 0.9), min(350.0, t.max() * 1.03), 400)
            model = [light_yield_scale(x) / light_yield_scale(ref_row["crystal_k"]) for x in grid]
            ax2.plot(grid, model, "-", lw=1, color="0.4", label="simulator model (PHYSICS.md 3.1)")
    ax2.set_xlabel("crystal temperature (K)")
    ax2.set_ylabel(f"LY / LY({reference})")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pdf = path.with_suffix(".pdf")
    fig.savefig(pdf)
    plt.close(fig)
    return [path, pdf]


def write_report(directory: Path, scan: CampaignConfig | None = None) -> tuple[str, Path]:
    """Analyse the campaign in `directory` (its journal and scan.yaml copy), write report/; return text, JSON path."""
    scan = scan or load_campaign(directory / "scan.yaml")
    records, _ = read_journal(directory / JOURNAL_NAME)
    if not records:
        raise JournalError(f"{directory / JOURNAL_NAME}: no finished step to report on")
    results = analyse_steps(directory, records)
    rows, text = ly_table(scan, results)
    pairs = pair_ratios(scan, directory, results)
    out = directory / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    plots = plot_ly_vs_t(rows, scan.reference(), out / "ly_vs_temperature.png")
    report = {
        "reference_step": scan.reference(),
        "ly_vs_temperature": rows,
        "r_ly": pairs,
        "failed_steps": [r.data for r in records if r.status != "done"],
        "runs": [run_json(r.analysis) for r in results if r.analysis is not None],
        "plots": [str(p) for p in plots],
    }
    path = out / "campaign.json"
    path.write_text(json.dumps(_finite(report), indent=2, allow_nan=False))
    for p in pairs:
        text += f"\nR_ly {p['a']}/{p['b']}: " + (
            f"{p['r_ly']:.4f} ± {p['error']:.4f}" if p["r_ly"] else p["note"]
        )
    return text, path


def _finite(obj: Any) -> Any:
    from analysis.report import _finite as finite

    return finite(obj)
