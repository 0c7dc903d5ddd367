"""The lab: the whole topology (proxy, web-<site>, ops, backup-a, backup-b) as Debian 13 system
containers on one machine, with the same inventory document the Pulumi program exports.

Entry points: ``python -m lab up|down|status|inventory|ssh`` (lab.cli) and the Python API in
lab.lab (``Lab(config).up()`` / ``.down()``), which the pytest fixture in tests/lab uses.
"""
