"""The JupyterHub and Zero to JupyterHub configuration load and say what the guide promises.

No hub or cluster is started here (see docs/INSTRUCTORS.md): these tests pin that the files are
valid, read the roster, and configure only options that exist."""

from __future__ import annotations

import yaml
from traitlets.config.loader import PyFileConfigLoader

from mlcourse import paths

DEPLOY = paths.course_root() / "deploy"


def test_jupyterhub_config_reads_the_roster(tmp_path, monkeypatch):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,first_name,last_name,email,team\nada,A,L,a@x,t\nalan,A,T,b@x,t\n")
    monkeypatch.setenv("MLCOURSE_ROSTER", str(roster))
    monkeypatch.setenv("MLCOURSE_COURSE_ID", "spring")
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(DEPLOY)).load_config()
    assert config.Authenticator.allowed_users == {"ada", "alan", "instructor"}
    assert config.JupyterHub.load_groups["nbgrader-spring"]["users"] == ["ada", "alan"]
    assert "grader-spring" in config.JupyterHub.load_groups["formgrade-spring"]["users"]
    (service,) = config.JupyterHub.services
    assert service["name"] == "spring" and service["user"] == "grader-spring"
    assert config.JupyterHub.bind_url.startswith("http://")


def test_global_nbgrader_config_sets_only_real_exchange_options():
    from nbgrader.exchange.default.exchange import Exchange

    config = PyFileConfigLoader("nbgrader_config_global.py", path=str(DEPLOY)).load_config()
    known = set(Exchange.class_trait_names())
    assert set(config.Exchange) <= known, set(config.Exchange) - known
    assert config.Exchange.root == "/srv/nbgrader/exchange"


def test_zero_to_jupyterhub_values_are_valid_yaml_with_the_exchange_volume():
    values = yaml.safe_load((DEPLOY / "z2jh-values.yaml").read_text())
    mounts = values["singleuser"]["storage"]["extraVolumeMounts"]
    assert {"/srv/nbgrader/exchange", "/etc/jupyter/nbgrader_config.py"} <= \
        {m["mountPath"] for m in mounts}
    assert "nbgraderGroups" in values["hub"]["extraConfig"]
