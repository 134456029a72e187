"""Persistence and orchestration: the SQLite store, the recorder, export bundles, the run manager, paths."""
