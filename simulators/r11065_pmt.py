"""The HAMAMATSU R11065 PMT as the simulator sees it: SPE pulse shape, SPE charges, afterpulses (PHYSICS.md 2.3)."""

from __future__ import annotations

import numpy as np

from simulators.physics_settings import PhysicsSettings

TEMPLATE_PHASES = 32


def spe_template(tau_ns: float, phases: int = TEMPLATE_PHASES) -> np.ndarray:
    """Return the SPE shape (t/tau)^2 exp(-t/tau), sampled every ns at `phases` sub-sample offsets.

    Row p holds the samples of a PE arriving p/phases ns after a sample boundary; every row sums
    to 1, so a PE of charge q adds exactly q ADC*ns to the waveform.
    """
    taps = int(np.ceil(14.0 * tau_ns)) + 2  # the tail beyond 14 tau holds < 1e-4 of the charge
    rows = np.empty((phases, taps), dtype=np.float32)
    m = np.arange(taps, dtype=np.float64)
    for p in range(phases):
        t = m - p / phases
        x = np.where(t > 0.0, t / tau_ns, 0.0)
        h = x * x * np.exp(-x)
        rows[p] = h / h.sum()
    return rows


class R11065:
    """Draw PE charges and afterpulses for the simulated PMT."""

    def __init__(self, settings: PhysicsSettings) -> None:
        self._s = settings
        self.template = spe_template(settings.spe_tau_ns)
        # Low-charge PEs pull the mean charge per PE below Qspe; this factor keeps the LY Qspe-equivalent.
        f, r = settings.low_charge_fraction, settings.low_charge_mean_rel
        self.pe_count_factor = 1.0 / (1.0 - f * (1.0 - r))

    def charges(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Return `n` PE charges (float32, ADC*ns): Gaussian(Qspe, sigma) redrawn while <= 0, plus low-charge PEs."""
        s = self._s
        q = rng.standard_normal(n, dtype=np.float32) * np.float32(s.sigma_spe_adc_ns) + np.float32(
            s.q_spe_adc_ns
        )
        bad = np.flatnonzero(q <= 0.0)
        while bad.size:
            q[bad] = rng.normal(s.q_spe_adc_ns, s.sigma_spe_adc_ns, bad.size)
            bad = bad[q[bad] <= 0.0]
        if s.low_charge_fraction > 0.0:
            low = rng.random(n) < s.low_charge_fraction
            q[low] = rng.exponential(s.low_charge_mean_rel * s.q_spe_adc_ns, int(low.sum()))
        return q

    def afterpulses(
        self, rng: np.random.Generator, pe_time_ns: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (parent index, time ns, charge) of the afterpulses following the given PEs."""
        s = self._s
        if s.afterpulse_probability <= 0.0 or pe_time_ns.size == 0:
            empty = np.zeros(0, dtype=np.float32)
            return np.zeros(0, dtype=np.int64), empty, empty
        parent = np.flatnonzero(rng.random(pe_time_ns.size) < s.afterpulse_probability)
        delay = rng.normal(s.afterpulse_delay_ns, s.afterpulse_delay_sigma_ns, parent.size)
        multiplicity = rng.integers(1, s.afterpulse_max_pe + 1, parent.size)
        charge = np.zeros(parent.size, dtype=np.float32)
        for k in range(1, s.afterpulse_max_pe + 1):
            sel = multiplicity >= k
            charge[sel] += self.charges(rng, int(sel.sum()))
        return parent, (pe_time_ns[parent] + delay).astype(np.float32), charge
