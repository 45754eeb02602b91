"""JupyterHub for one cohort on one machine: learners' servers, nbgrader's exchange, formgrader.

Run as root on the hub machine (JupyterHub is installed separately: `pip install jupyterhub`):

    MLCOURSE_ROSTER=/srv/mlcourse/roster.csv jupyterhub -f deploy/jupyterhub_config.py

Each learner on the roster logs in with a local Unix account of the same name (PAM); the
instructor account grades in formgrader, served as a hub service from the cohort folder made by
`mlcourse cohort init /home/grader-mlcourse/cohort --roster roster.csv`. The exchange lives in
/srv/nbgrader/exchange (create it mode 777, sticky: `install -d -m 1777 /srv/nbgrader/exchange`),
and every server finds it through /etc/jupyter/nbgrader_config.py (deploy/nbgrader_config_global.py).
For many learners use Zero to JupyterHub on Kubernetes instead: deploy/z2jh-values.yaml.
"""

import csv
import os

c = get_config()  # noqa: F821  (injected by JupyterHub)

COURSE_ID = os.environ.get("MLCOURSE_COURSE_ID", "cohort")
GRADER = f"grader-{COURSE_ID}"
INSTRUCTORS = set(filter(None, os.environ.get("MLCOURSE_INSTRUCTORS", "instructor").split(",")))


def roster_ids(path):
    with open(path, newline="") as handle:
        return sorted(row["id"] for row in csv.DictReader(handle))


LEARNERS = roster_ids(os.environ.get("MLCOURSE_ROSTER", "/srv/mlcourse/roster.csv"))

c.JupyterHub.bind_url = "http://:8000"
c.JupyterHub.authenticator_class = "jupyterhub.auth.PAMAuthenticator"
c.Authenticator.allowed_users = set(LEARNERS) | INSTRUCTORS
c.Authenticator.admin_users = INSTRUCTORS
c.Spawner.default_url = "/lab"
c.Spawner.mem_limit = "2G"          # honoured by spawners that enforce limits (e.g. KubeSpawner)

# nbgrader's lab extensions decide what a user sees from these groups.
c.JupyterHub.load_groups = {
    f"formgrade-{COURSE_ID}": {"users": sorted(INSTRUCTORS | {GRADER})},
    f"nbgrader-{COURSE_ID}": {"users": LEARNERS},
}
c.JupyterHub.load_roles = [
    {"name": f"formgrade-{COURSE_ID}", "groups": [f"formgrade-{COURSE_ID}"],
     "scopes": [f"access:services!service={COURSE_ID}"]},
    {"name": "server", "scopes": ["inherit"]},   # lets nbgrader in a server query the hub
]

# The course service: a Jupyter server in the cohort folder, where formgrader runs.
c.JupyterHub.services = [{
    "name": COURSE_ID,
    "url": "http://127.0.0.1:9999",
    "command": ["jupyterhub-singleuser", "--port=9999", "--ServerApp.default_url=/formgrader"],
    "user": GRADER,
    "cwd": f"/home/{GRADER}/cohort",
    "environment": {"JUPYTERHUB_DEFAULT_URL": "/formgrader"},
    "oauth_no_confirm": True,
}]
