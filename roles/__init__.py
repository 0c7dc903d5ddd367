"""Configuration of the hosts (`fab deploy`): the engine (roles.core), the roles, the tasks.

Flow: inventory (roles.inventory) -> per host, the roles of its inventory role
(roles.registry) -> facts -> decisions -> actions (roles.core). See docs/deploy.md.
"""
