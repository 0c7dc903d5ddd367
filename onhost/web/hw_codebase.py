"""What a release's own code is asked on a web host: does it parse and boot (php, Drush
status), its post-switch step (`drush deploy`) inside Drupal's maintenance mode, and does the
live site answer (the health check). Every command runs as the site's PHP user."""
import os
import time

from hw_util import run


class Codebase:
    """The codebase steps of `hw_site.Site` (its user, php, root and health URL)."""

    def check(self, release):
        """Before going live: the front controller parses, and, when the codebase has Drush,
        it boots against the real settings and database, as the site's PHP user."""
        index = os.path.join(release, "web", "index.php")
        run(["runuser", "-u", self.user, "--", self.php, "-l", index])
        drush = os.path.join(release, "vendor", "bin", "drush")
        if os.path.exists(drush):
            run(["runuser", "-u", self.user, "--", self.php, drush,
                 "--root=" + os.path.join(release, "web"), "status"], timeout=120,
                env={"HOME": self.root})

    def has_post_step(self, release):
        """A codebase with Drush (Drupal's, or the test fixture's stand-in) has a post-switch
        step that changes the database."""
        return os.path.exists(os.path.join(release, "vendor", "bin", "drush"))

    def _drush(self, release, *args, timeout=120):
        run(["runuser", "-u", self.user, "--", self.php,
             os.path.join(release, "vendor", "bin", "drush"),
             "--root=" + os.path.join(release, "web"), "--yes", *args], timeout=timeout,
            env={"HOME": self.root})

    def maintenance(self, release, on):
        """Drupal's own maintenance mode (503 to visitors, through the proxy's maintenance
        page), set with the given release's Drush."""
        self._drush(release, "state:set", "system.maintenance_mode", "1" if on else "0",
                    "--input-format=integer")

    def post_switch(self, release):
        """`drush deploy` (database updates, config import, cache rebuild), inside Drupal's
        maintenance mode (set by deploy() around it, for the shortest time: R-MNT-1)."""
        self._drush(release, "deploy", timeout=1800)
        return "drush deploy"

    def healthy(self):
        """The live site answers below 500 on the web host itself (front controller, PHP,
        database); True when there is nothing to check."""
        if not self.health_url:
            return True, "no health check configured"
        last = ""
        for _ in range(5):
            proc = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                        "20", "-H", "Host: " + self.health_host, self.health_url], check=False)
            last = proc.stdout.strip() or proc.stderr.strip()
            if proc.returncode == 0 and last.isdigit() and int(last) < 500:
                return True, last
            time.sleep(1)
        return False, last
