"""Backups of the sites on restic (issue 6): the web host's role, `fab backup.*`, restore."""
