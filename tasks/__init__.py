"""The `fab` entry points (fabfile.py registers them) and the admin-side procedures they run.

Names: deploy.py and verify.py are top-level tasks; <area>_tasks.py is a `fab <area>.*`
namespace (ca, web, proxy, backup); <area>_<action>.py is a procedure one of them runs
(backup_restore, backup_setup, backup_status, web_release, web_codebase). Thin wrappers; the
work is in plain functions the tests call. No module here shares a name with on-host code.
"""
