"""Monitoring and alerting (issue 13, R-HOST-4): Prometheus, Alertmanager and the blackbox
exporter on the ops host (`ops_monitoring`), the node exporter on every host (`node_exporter`),
the incident receiver on ops (`incidents`, R-INC-4)."""
