"""On-host code of the ACME certificate path (issue 14): the ops host's certbot deploy hook
and the proxy's installer it feeds over SSH. Standard library only."""
