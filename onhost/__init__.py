"""Code that runs on the hosts, not on the admin's machine: the deploy agent (agent.py, sent
over SSH by engine/remote.py) and the web helper (web/, copied to the web hosts by
roles/web/role.py). Standard library only: the hosts run Debian's python3 and nothing else
(tests/unit/onhost/test_stdlib_only.py fails otherwise). The backup runner (backup/) is
on-host code too; it keeps its top-level name."""
