"""steadygrad.data."""
