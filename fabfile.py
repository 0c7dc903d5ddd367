"""Fabric's entry point (`fab -l`): the tasks live in roles/; see docs/deploy.md."""
from invoke import Collection

from tasks import acme_tasks, backup_tasks, monitor_tasks, proxy_tasks, web_tasks
from tasks import ca_tasks as ca
from tasks.audit_tasks import audit
from tasks.decommission_tasks import decommission
from tasks.deploy import deploy
from tasks.export_tasks import export
from tasks.incidents_tasks import incidents
from tasks.update_tasks import update, updates
from tasks.verify import verify

ns = Collection(deploy, verify, Collection.from_module(ca, name="ca"),
                Collection.from_module(web_tasks, name="web"),
                Collection.from_module(proxy_tasks, name="proxy"),
                Collection.from_module(backup_tasks, name="backup"),
                Collection.from_module(monitor_tasks, name="monitor"),
                Collection.from_module(acme_tasks, name="acme"))
ns.add_task(backup_tasks.restore)  # `fab restore --site NAME ...` (R-INC-1), as documented
ns.add_task(incidents)  # `fab incidents [--json]`: the incident record on ops (R-INC-4)
ns.add_task(audit)  # `fab audit [--env prod] [--out DIR]`: the contract, clause by clause
ns.add_task(export)  # `fab export --site X --to FILE --recipient AGE_KEY` (R-DATA-1)
ns.add_task(decommission)  # `fab decommission --site X [--purge-backups-now]` (R-GDPR-8)
ns.add_task(update)  # `fab update --site X --ref REF`: preprod qualification, then prod
ns.add_task(updates)  # `fab updates`: the update log on ops (R-MNT-2, R-INC-4)
