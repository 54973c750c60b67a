"""The rollout playbook through `ansible-runner run`, the way AWX and automation controller run it: a private
data dir (inventory, env/extravars, env/envvars), and each host's result read back from the job events."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# the 3-node fixture of the playbook tests
from test_playbooks import fleet, upgrade_vars  # noqa: F401  pylint: disable=unused-import

ANSIBLE_RUNNER = str(Path(sys.executable).parent / "ansible-runner")
UPGRADE_TASK = "Unpack, verify ERTS, hot-upgrade, check health and remove old releases"


def private_data_dir(base, inventory, extravars):
    """An ansible-runner private data dir: inventory/hosts, env/extravars, env/envvars (mode 0600 files)."""
    (base / "inventory").mkdir(parents=True)
    (base / "env").mkdir()
    (base / "project").mkdir()
    shutil.copy(str(inventory), str(base / "inventory" / "hosts"))
    envvars = dict((name, os.environ[name]) for name in ("ANSIBLE_COLLECTIONS_PATH", "ERL_EPMD_PORT"))
    for name, data in (("extravars", extravars), ("envvars", envvars)):
        path = base / "env" / name
        path.write_text(json.dumps(data))
        path.chmod(0o600)
    return base


def job_events(artifacts):
    """Every job event of the one run under artifacts, in order."""
    (run_dir,) = [path for path in artifacts.iterdir() if path.is_dir()]
    events = [json.loads(path.read_text()) for path in (run_dir / "job_events").glob("*.json")]
    return sorted(events, key=lambda event: event["counter"])


def test_rollout_through_ansible_runner_reports_each_host_in_the_job_events(fleet, tmp_path):  # noqa: F811
    fleet = fleet(upgrade_in_inventory=False)
    pids = dict((host, fleet.state(host)[2]) for host in fleet.nodes)
    pdd = private_data_dir(tmp_path / "runner", fleet.inventory, upgrade_vars(fleet))
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run([ANSIBLE_RUNNER, "run", str(pdd), "-p", "otp.release.migrate_then_upgrade", "--ident", "rollout"],
                          env=dict(os.environ, PATH=path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-5000:]
    artifacts = pdd / "artifacts"
    assert (artifacts / "rollout" / "status").read_text() == "successful"

    events = job_events(artifacts)
    upgrades = dict((event["event_data"]["host"], event["event_data"]["res"]) for event in events
                    if event["event"] == "runner_on_ok" and event["event_data"]["task"] == UPGRADE_TASK)
    assert sorted(upgrades) == ["app1", "app2", "app3"]
    for host, result in upgrades.items():
        assert (result["from_version"], result["to_version"], result["restart"], result["changed"]) == \
            ("1.0.0", "2.0.0", "none", True)
        assert isinstance(result["duration_ms"], int) and result["duration_ms"] > 0
        assert result["os_pid"] == pids[host] and fleet.state(host)[:2] == ("2.0.0", {"1.0.0": "old", "2.0.0": "permanent"})

    (stats,) = [event["event_data"] for event in events if event["event"] == "playbook_on_stats"]
    assert set(stats["changed"]) == {"app1", "app2", "app3"} and not stats["failures"] and not stats["dark"]
    # the record is off by default: none of its tasks ran
    assert not [event for event in events if event["event"] == "runner_on_ok"
                and "record" in event["event_data"].get("task", "").lower()]
    for node in fleet.nodes.values():
        assert node.cookie not in (artifacts / "rollout" / "stdout").read_text()
