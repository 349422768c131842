"""Run control of the CLOVERS test stand: configuration, acquisition, writer, slow control, CLI."""

from daq.digitizer_urls import register_simulated_dt5751

register_simulated_dt5751()  # sim:// opens the DT5751 simulator for every front-end (daq/digitizer_urls.py)
