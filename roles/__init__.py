"""The roles only: each a pure function of a host's context that returns the desired state
(base, mariadb, proxy, web, backup, storage; roles.registry maps an inventory role to them).

Flow: inventory (engine.inventory) -> per host, the roles of its inventory role
(roles.registry) -> facts -> decisions -> actions (engine/). The `fab` tasks live in tasks/,
the code that runs on the hosts in onhost/ and backup/. See docs/architecture.md.
"""
