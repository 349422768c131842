"""Run control of the CLOVERS test stand: configuration, acquisition, writer, slow control, CLI.

Every front-end opens a digitizer through daq/digitizer_urls.py (open_digitizer, connect_digitizer_node),
which registers sim:// first: `import daq` itself loads no drivers, so `daq --help`, `info` and `runs`
stay light.
"""
