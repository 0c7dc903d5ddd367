"""SSH trust: certificate authorities, certificate parsing, host-certificate checks.

R-GDPR-5 (access by certificate only) and R-BKP-7 (off-site transfers authenticated by
certificate) rest on this package; see docs/ssh-trust.md.
"""
