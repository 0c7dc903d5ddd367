"""Fabric's entry point (`fab -l`): the tasks live in roles/tasks; see docs/deploy.md."""
from invoke import Collection

from roles.tasks import ca
from roles.tasks.deploy import deploy

ns = Collection(deploy, Collection.from_module(ca, name="ca"))
