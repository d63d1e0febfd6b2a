"""The HTTP API, one Chalice Blueprint per capability; app.py registers them (wiring only)."""
