"""The playbooks and roles on three real nodes: migrate once, then hot-upgrade; failures stop the rollout;
downgrade ad hoc and by playbook; the fleet report."""

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_cli import CLI_ENV, run_playbook
from ansible_collections.otp.release.plugins.module_utils._erlterm import parse, to_plain

HERE = Path(__file__).resolve().parent
ANSIBLE = str(Path(sys.executable).parent / "ansible")


class Fleet(object):
    def __init__(self, nodes, inventory, database):
        self.nodes = nodes
        self.inventory = inventory
        self.database = database

    def state(self, host):
        """(version the code runs, {version: state}, OS pid, shape) of one node, from the node."""
        version, states, pid, shape = to_plain(parse(self.nodes[host].rpc(
            "{kvstore:version(), [{V, S} || {_, V, _, S} <- release_handler:which_releases()], "
            "list_to_integer(os:getpid()), kvstore:state_shape()}")))
        return version, dict(map(tuple, states)), pid, shape

    def data(self, host):
        return to_plain(parse(self.nodes[host].rpc(
            "[{K, element(2, kvstore:get(K))} || K <- lists:sort(kvstore:keys())]")))

    def columns(self):
        with sqlite3.connect(str(self.database)) as db:
            return [row[1] for row in db.execute("PRAGMA table_info(kv)")]

    def migrations(self):
        with sqlite3.connect(str(self.database)) as db:
            if not db.execute("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'").fetchall():
                return []
            return db.execute("SELECT name, applied_at_ms FROM schema_migrations").fetchall()

    def playbook(self, playbook, extra_vars=None):
        return run_playbook(playbook, extra_vars, inventory=self.inventory)

    def run_check(self, playbook, extra_vars=None):
        """The playbook with --check."""
        return run_playbook(playbook, extra_vars, inventory=self.inventory, check=True)

    def adhoc(self, pattern, module, args):
        done = subprocess.run([ANSIBLE, pattern, "-i", str(self.inventory), "-m", module, "-a", args],
                              env=dict(os.environ, **CLI_ENV), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
        return done.returncode, done.stdout


@pytest.fixture
def fleet(world, deploy, start_node, tmp_path):
    """fleet(versions, host_vars) -> Fleet of real nodes sharing one SQLite database, in an inventory
    group otp_release (app1, app2, ...) with the upgrade's variables as group variables."""

    def make(versions=("1.0.0", "1.0.0", "1.0.0"), host_vars=None, upgrade_in_inventory=True):
        database = tmp_path / "kvstore.db"
        nodes = {}
        for index, version in enumerate(versions, 1):
            nodes["app%d" % index] = start_node(deploy(version), env={"KVSTORE_DB": str(database)})
        lines = ["[otp_release]"]
        for host, node in nodes.items():
            extra = " ".join("%s=%s" % item for item in (host_vars or {}).get(host, {}).items())
            lines.append("%s ansible_connection=local ansible_python_interpreter=%s otp_release_root=%s "
                         "otp_release_cookie_file=%s %s" % (host, sys.executable, node.root, node.cookie_file, extra))
        variables = dict(otp_release_name="kvstore")
        if upgrade_in_inventory:
            variables.update(otp_release_src=str(world["2.0.0"]), otp_release_version="2.0.0")
        lines += ["", "[otp_release:vars]"] + ["%s=%s" % item for item in variables.items()]
        inventory = tmp_path / "inventory.ini"
        inventory.write_text("\n".join(lines) + "\n")
        fleet = Fleet(nodes, inventory, database)
        fleet.upgrade_extra = {} if upgrade_in_inventory else dict(otp_release_src=str(world["2.0.0"]), otp_release_version="2.0.0")
        for key in ("alice", "bob", "carol"):
            nodes["app1"].rpc('kvstore:put(<<"%s">>, <<"%s-value">>)' % (key, key))
        return fleet

    return make


def upgrade_vars(fleet, **extra):
    variables = dict(otp_release_migrate_mfa=dict(module="kv_migrate", function="run"),
                     otp_release_health_mfa=dict(module="kvstore", function="health"),
                     otp_release_environment=dict(KVSTORE_DB=str(fleet.database)))
    variables.update(fleet.upgrade_extra)
    variables.update(extra)
    return variables


def recap(output):
    """{host: {ok: n, changed: n, failed: n, ...}} from the PLAY RECAP."""
    found = {}
    for host, counts in re.findall(r"^(app\d+)\s+:\s+(.*)$", output, re.M):
        found[host] = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", counts))
    return found


EXPECTED_DATA = [["alice", "alice-value"], ["bob", "bob-value"], ["carol", "carol-value"]]


def test_migration_alone_keeps_the_old_version_serving(fleet):
    fleet = fleet()
    rc, output = fleet.playbook(HERE / "playbooks" / "migrate_only.yml", upgrade_vars(fleet))
    assert rc == 0, output
    assert "updated_at" in fleet.columns() and len(fleet.migrations()) == 1
    for host in fleet.nodes:
        version, states, pid, shape = fleet.state(host)
        assert (version, states["1.0.0"], shape) == ("1.0.0", "permanent", "v1")
        assert fleet.nodes[host].rpc('kvstore:put(<<"from-%s">>, <<"1.0.0 on the migrated schema">>)' % host) == "ok"
    assert ["from-app3", "1.0.0 on the migrated schema"] in fleet.data("app1")


def test_migrate_then_upgrade_then_rerun_then_downgrade(fleet):
    fleet = fleet(upgrade_in_inventory=False)
    pids = dict((host, fleet.state(host)[2]) for host in fleet.nodes)
    kv_pids = dict((host, fleet.nodes[host].rpc("kvstore:server_pid()")) for host in fleet.nodes)

    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(fleet))
    assert rc == 0, output
    migrations = fleet.migrations()
    assert len(migrations) == 1 and "updated_at" in fleet.columns()
    applied_at_ms = migrations[0][1]
    for host, node in fleet.nodes.items():
        version, states, pid, shape = fleet.state(host)
        assert (version, states.get("2.0.0"), shape, pid) == ("2.0.0", "permanent", "v2", pids[host])
        assert node.rpc("kvstore:server_pid()") == kv_pids[host]
        upgraded_at_ms = os.stat(str(node.root / "releases" / "RELEASES")).st_mtime * 1000
        assert applied_at_ms < upgraded_at_ms, "the migration ran after %s was upgraded" % host
    assert fleet.data("app3") == EXPECTED_DATA
    # the rollout reviews each relup in strict mode: the good relup has no finding
    assert re.search(r"app1\s+1\.0\.0 -> 2\.0\.0\s+restart: none\s+\d+ ms\s+review findings: 0", output), output
    assert "kv_migrate" in output

    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(fleet))
    assert rc == 0, output
    assert all(counts["changed"] == 0 for counts in recap(output).values()), output
    assert '"transferred": true' not in output

    rc, output = fleet.adhoc("app1", "otp.release.downgrade", "root=%s" % fleet.nodes["app1"].root)
    assert rc == 0, output
    rc, output = fleet.playbook("otp.release.downgrade", {"otp_release_hosts": "app2:app3"})
    assert rc == 0, output
    assert "the schema stays migrated" in output
    for host in fleet.nodes:
        version, states, pid, shape = fleet.state(host)
        assert (version, states["1.0.0"], shape, pid) == ("1.0.0", "permanent", "v1", pids[host])
    assert "updated_at" in fleet.columns() and len(fleet.migrations()) == 1
    assert fleet.data("app2") == EXPECTED_DATA


def test_failing_migration_upgrades_no_node(fleet):
    fleet = fleet()
    pids = dict((host, fleet.state(host)[2]) for host in fleet.nodes)
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade",
                                upgrade_vars(fleet, otp_release_migrate_mfa=dict(module="kv_migrate", function="fail")))
    assert rc != 0
    assert "kv_migrate:fail" in output and "migration_failed" in output, output
    for host in fleet.nodes:
        version, states, pid, shape = fleet.state(host)
        assert (version, states.get("1.0.0"), pid) == ("1.0.0", "permanent", pids[host])
        assert states.get("2.0.0") in (None, "unpacked")
        assert fleet.nodes[host].rpc('kvstore:put(<<"after">>, <<"x">>)') == "ok"


def test_a_crashing_upgrade_on_host_2_stops_the_rollout(fleet, world):
    fleet = fleet(host_vars={"app2": {"otp_release_src": str(world["1.1.0"]), "otp_release_version": "1.1.0"}})
    pids = dict((host, fleet.state(host)[2]) for host in fleet.nodes)
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(fleet))
    assert rc != 0
    assert fleet.state("app1")[:2] == ("2.0.0", {"1.0.0": "old", "2.0.0": "permanent"})
    version, states, pid, shape = fleet.state("app2")
    assert (version, states["1.0.0"], pid) == ("1.0.0", "permanent", pids["app2"])
    assert "restarted" in output and "app2" in output
    version, states, pid, shape = fleet.state("app3")
    # the plan stage unpacked 2.0.0 next to the running version on every host; nothing ran it
    assert (version, states, pid) == ("1.0.0", {"1.0.0": "permanent", "2.0.0": "unpacked"}, pids["app3"])
    assert re.search(r"app2\s+1\.0\.0\s+1\.0\.0", output), output


def test_an_unhealthy_upgrade_is_rolled_back(fleet):
    fleet = fleet(versions=("1.0.0",))
    pid = fleet.state("app1")[2]
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(
        fleet, otp_release_health_mfa=dict(module="kvstore", function="unhealthy"), otp_release_rollback_on_unhealthy=True))
    assert rc != 0
    assert "health" in output and "kvstore:unhealthy" in output, output
    version, states, now_pid, shape = fleet.state("app1")
    assert (version, states["1.0.0"], now_pid, shape) == ("1.0.0", "permanent", pid, "v1")
    assert fleet.data("app1") == EXPECTED_DATA


def test_report_shows_each_host_and_the_drift_and_downgrade_refuses_a_split_fleet(fleet):
    fleet = fleet(upgrade_in_inventory=False)
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(fleet, otp_release_hosts="app2:app3"))
    assert rc == 0, output
    app3 = fleet.nodes["app3"]
    (app3.root / "bin" / "kvstore").write_bytes((app3.root / "bin" / "kvstore-1.0.0").read_bytes())

    rc, output = fleet.playbook("otp.release.report")
    assert rc == 0, output
    rows = dict((line.split()[0].strip('"'), line) for line in output.splitlines()
                if re.match(r'\s*"app\d\s', line))
    assert re.search(r"app1\s+1\.0\.0\s+1\.0\.0\s+1\.0\.0\s+-\s+-\s+up\s+runs 1\.0\.0", rows["app1"]), output
    assert re.search(r"app2\s+2\.0\.0\s+2\.0\.0\s+2\.0\.0\s+-\s+1\.0\.0\s+up\s+-", rows["app2"]), output
    assert re.search(r"app3\s+2\.0\.0\s+2\.0\.0\s+1\.0\.0\s+-\s+1\.0\.0\s+up\s+.*1\.0\.0", rows["app3"]), output

    rc, output = fleet.playbook("otp.release.downgrade")
    assert rc != 0
    assert "do not agree" in output and "app1" in output, output
    assert fleet.state("app2")[0] == "2.0.0" and fleet.state("app3")[0] == "2.0.0"
