"""Run control of the CLOVERS test stand: configuration, acquisition, writer, slow control, CLI."""
