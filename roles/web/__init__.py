"""The web role: one web host per site (R-HOST-2) with nginx, PHP 8.4-FPM and MariaDB
(R-MNT-3), the site's own Unix user, pool, database and encrypted private files (R-GDPR-1,
R-GDPR-4). Releases and rollback: tasks/web_release.py and the helper onhost/web/.
Layout and reasons: docs/web-tier.md.
"""
