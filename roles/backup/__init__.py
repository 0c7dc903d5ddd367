"""Backups of the sites on restic (issue 6): the web host's backup role (its runner's
configuration and layout). `fab backup.*` and restore live in tasks/ (backup_*.py), the runner
that the role installs on the hosts in backup/."""
