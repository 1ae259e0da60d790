"""Statistics, comparisons and figures, drawn from the run records (the top layer)."""
