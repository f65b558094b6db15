"""Analyses of ONE simulated trial's data (conjugate fast path, PyMC models). Never imports simpy."""
