"""Everything on the simpy clock: recruitment, randomisation, follow-up. Never imports PyMC."""

from trialsim.engine.trial import simulate_trial

__all__ = ["simulate_trial"]
