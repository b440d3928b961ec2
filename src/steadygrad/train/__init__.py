"""steadygrad.train."""
