"""Offline and online analysis of the CLOVERS waveforms: pure functions on arrays."""
