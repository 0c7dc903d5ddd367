"""Central logging (issue 17, lynis LOGG-2154): every host ships its journal to ops over
mutual TLS (roles/logging/role.py, docs/logging.md)."""
