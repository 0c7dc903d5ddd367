"""MariaDB on the web hosts: bound to localhost, hardened to dev-sec mysql-baseline's bar,
one database and one user per site (R-GDPR-4, R-MNT-3)."""
