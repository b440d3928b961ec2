"""steadygrad.optim."""
