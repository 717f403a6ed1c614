"""Attack tests: one per attack, against the real API server, as the real identity."""
