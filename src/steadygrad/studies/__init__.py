"""steadygrad.studies."""
