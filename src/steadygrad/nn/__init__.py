"""steadygrad.nn."""
