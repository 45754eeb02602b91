"""/etc/jupyter/nbgrader_config.py on a hub: every learner's and grader's server reads it."""

c = get_config()  # noqa: F821

c.Exchange.root = "/srv/nbgrader/exchange"
c.Exchange.path_includes_course = True
# The hub tells nbgrader which courses a user belongs to (the groups in jupyterhub_config.py).
c.Exchange.assignment_dir = "."
