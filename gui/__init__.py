"""PyQt6 + pyqtgraph front end over daq/ (the only package that imports Qt)."""
