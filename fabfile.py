"""Fabric's entry point (`fab -l`): the tasks live in roles/; see docs/deploy.md."""
from invoke import Collection

from roles.backup import tasks as backup_tasks
from roles.proxy import tasks as proxy_tasks
from roles.tasks import ca
from roles.tasks.deploy import deploy
from roles.tasks.verify import verify
from roles.web import tasks as web_tasks

ns = Collection(deploy, verify, Collection.from_module(ca, name="ca"),
                Collection.from_module(web_tasks, name="web"),
                Collection.from_module(proxy_tasks, name="proxy"),
                Collection.from_module(backup_tasks, name="backup"))
ns.add_task(backup_tasks.restore)  # `fab restore --site NAME ...` (R-INC-1), as documented
