"""The proxy role: the only public HTTP(S) entry (R-HOST-1), one public IP per site
(R-HOST-2), TLS termination (R-GDPR-2), preprod kept out of search engines. docs/web-tier.md.
"""
