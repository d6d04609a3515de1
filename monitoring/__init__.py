"""Monitoring: posterior drift between model versions, lift-test calibration, data drift, alerts, dashboard."""
