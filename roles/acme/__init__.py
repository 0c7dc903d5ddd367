"""The wildcard certificate by ACME DNS-01 on the OVH DNS zone (issue 14, R-SCOPE-2):
certbot on ops (`acme_ops`), the proxy's installer account (`acme_proxy`), the settings and the
OVH access rules (`config`). docs/tls.md."""
