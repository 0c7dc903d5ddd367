"""The storage servers (backup-a, backup-b): per-site append-only repositories (issue 6)."""
