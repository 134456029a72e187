"""Figure builders (Plotly and DOT): pure functions from plain data to figures."""
