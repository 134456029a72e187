"""The collapse monitor: indicator functions, probes, alerts and the per-run tracker."""
