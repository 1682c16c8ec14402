"""The node's own numbers: event-loop lag, histograms of seconds, and their Prometheus
exposition (``/metrics``)."""
