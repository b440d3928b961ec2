"""steadygrad.experiments."""
