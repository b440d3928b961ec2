"""steadygrad.diagnostics."""
