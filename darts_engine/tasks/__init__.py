"""Tasks: what a search is trained for (data, losses, metrics, artifacts), one module each."""
