"""The `fab` entry points (fabfile.py registers them) and the admin-side procedures they run.

Names: deploy.py and verify.py are top-level tasks; <area>_tasks.py holds the tasks of an area:
a `fab <area>.*` namespace (ca, web, proxy, backup, monitor, acme), or the area's one top-level
task (`fab incidents`, `fab audit`, `fab export`, `fab decommission`, `fab update` and
`fab updates`; and `fab restore`,
from backup_tasks);
<area>_<action>.py is a procedure one of them runs (backup_restore, backup_setup,
backup_status, backup_ledger, backup_contain, incident_record, web_release, web_codebase,
decommission_run, decommission_plan, decommission_report, update_run, update_plan,
update_checks). Thin
wrappers; the work is in plain functions the tests call. No module here shares a name with
on-host code.
"""
