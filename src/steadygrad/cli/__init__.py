"""steadygrad.cli."""
