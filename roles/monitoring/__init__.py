"""The monitoring of the platform (issue 13, docs/monitoring.md): Prometheus, Alertmanager,
exporters, textfile metrics, pending updates and the incident record."""
