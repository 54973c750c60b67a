"""The collection against a real fleet over SSH (fleet.py): a login user with sudo, nodes run by their own
app users, `become_user` root or the app user. After every change, nothing under a root belongs to anyone but
its app user, and the app user can stop and start the node with relx's own script, booting the permanent
version. Unreachable hosts and stopped nodes stop a rollout before any change and show in the table. The
cookies never show in a command line, the output or a file under a root."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_cli import CLI_ENV, run_playbook
from ansible_collections.otp.release.plugins.module_utils._erlterm import parse, to_plain
from fleet import UNREACHABLE_ADDRESS

ANSIBLE = str(Path(sys.executable).parent / "ansible")
ADHOC_RESULT = re.compile(r"^(\S+) \| (SUCCESS|CHANGED|FAILED!|UNREACHABLE!) => (?=\{)", re.M)
BECOME = ["root", "app"]


class CookieWatcher(object):
    """Collects every command line that holds one of the cookies, except those of the nodes themselves
    (the first node has its cookie in vm.args, which erlexec copies into beam.smp's argv)."""

    def __init__(self, fleet):
        self.cookies = [host.cookie for host in fleet.hosts.values()]
        self.ignored = set(pid for host in fleet.hosts.values() for pid in host.pids)
        self.seen = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.watch)

    def watch(self):
        while not self.done.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) in self.ignored:
                    continue
                try:
                    with open("/proc/%s/cmdline" % entry, "rb") as handle:
                        line = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
                except OSError:
                    continue
                if any(cookie in line for cookie in self.cookies):
                    self.seen.append(line)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def playbook(fleet, inventory, name, extra_vars=None):
    """(rc, output, seconds) of a collection playbook against the fleet."""
    started = time.monotonic()
    rc, output = run_playbook(name, extra_vars, inventory=inventory, env=fleet.ansible_env(), interpreter=None)
    return rc, output, time.monotonic() - started


def adhoc(fleet, inventory, pattern, module, args):
    """(rc, {host: (status, result)}, output) of an ad-hoc `ansible pattern -m module -a args`."""
    done = subprocess.run([ANSIBLE, pattern, "-i", str(inventory), "-m", module, "-a", args],
                          env=dict(os.environ, **dict(CLI_ENV, **fleet.ansible_env())), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
    results = {}
    for match in ADHOC_RESULT.finditer(done.stdout):
        results[match.group(1)] = (match.group(2), json.JSONDecoder().raw_decode(done.stdout, match.end())[0])
    return done.returncode, results, done.stdout


def recap(output):
    """{host: {ok: n, changed: n, failed: n, unreachable: n, ...}} from the PLAY RECAP."""
    found = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        found[host] = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", counts))
    return found


def report_rows(output):
    """{host: row} of the report tables printed in output (the last table wins)."""
    rows = {}
    for line in output.splitlines():
        match = re.match(r'\s*"((?:app\d|norelease))\s+(.*)",?$', line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def node_state(fleet, host):
    """(version the code runs, {version: state}, OS pid) asked from the node by its app user."""
    rc, text = fleet.rpc(host, "{kvstore:version(), [{V, S} || {_, V, _, S} <- release_handler:which_releases()], "
                               "list_to_integer(os:getpid())}")
    version, states, pid = to_plain(parse(text.strip()))
    return version, dict(map(tuple, states)), pid


def migrations(fleet):
    """Names of the applied migrations in the fleet's database."""
    with sqlite3.connect(str(fleet.database)) as db:
        if not db.execute("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'").fetchall():
            return []
        return [row[0] for row in db.execute("SELECT name FROM schema_migrations")]


def root_listing(fleet, host):
    """Every path under the root with size, mtime, owner and mode: a listing that shows any change."""
    return subprocess.run(["find", str(host.root), "-printf", "%p %s %T@ %u:%g %m\\n"], stdout=subprocess.PIPE,
                          text=True, check=True).stdout


def assert_owned_and_restartable(fleet, version):
    """Nothing under any root belongs to another user, and each app user's own `bin/kvstore stop` and
    `daemon` bring the node back on `version`, the permanent one."""
    for host in fleet.hosts.values():
        assert fleet.not_owned(host) == [], "%s: not owned by %s" % (host.name, host.user)
    for host in fleet.hosts.values():
        rc, output = fleet.relx(host, "stop", check=False)
        assert rc == 0, "%s: bin/kvstore stop as %s: %s" % (host.name, host.user, output)
        fleet.stop_node(host)
        fleet.start_node(host)
        booted, states, _os_pid = node_state(fleet, host)
        assert (booted, states.get(version)) == (version, "permanent"), (host.name, booted, states)


def assert_no_cookie_left(fleet, outputs, watcher):
    assert watcher.seen == [], "cookies in command lines: %s" % watcher.seen[:3]
    for host in fleet.hosts.values():
        assert not any(host.cookie in output for output in outputs), "%s's cookie is in the output" % host.name
        found = subprocess.run(["grep", "-rlF", host.cookie, str(host.root)], stdout=subprocess.PIPE, text=True,
                               check=False).stdout
        assert found == "", "%s's cookie is in files under its root: %s" % (host.name, found)


def upgrade_vars(fleet, world):
    return dict(otp_release_src=str(world["2.0.0"]), otp_release_version="2.0.0",
                otp_release_migrate_mfa=dict(module="kv_migrate", function="run"),
                otp_release_health_mfa=dict(module="kvstore", function="health"),
                otp_release_environment=dict(KVSTORE_DB=str(fleet.database)))


@pytest.mark.parametrize("become", BECOME)
def test_rollout_rerun_and_ad_hoc_downgrade_over_ssh(ssh_fleet, world, tmp_path, become):
    fleet = ssh_fleet
    pids = fleet.start_nodes()
    inventory = fleet.inventory(tmp_path / "inventory.ini", become_user=become)
    variables = upgrade_vars(fleet, world)
    outputs = []
    with CookieWatcher(fleet) as watcher:
        rc, output, rollout_seconds = playbook(fleet, inventory, "otp.release.migrate_then_upgrade", variables)
        outputs.append(output)
        assert rc == 0, output
        rc, output, rerun_seconds = playbook(fleet, inventory, "otp.release.migrate_then_upgrade", variables)
        outputs.append(output)
    sys.stderr.write("\nSSH rollout (become %s): %.1f s, no-op re-run %.1f s\n" % (become, rollout_seconds, rerun_seconds))
    assert rc == 0, output
    counts = recap(output)
    assert set(counts) >= set(fleet.hosts) and all(host["changed"] == 0 for host in counts.values()), output
    assert "the migration is not run again" in output, output
    assert len(migrations(fleet)) == 1
    for name, host in fleet.hosts.items():
        assert node_state(fleet, host) == ("2.0.0", {"1.0.0": "old", "2.0.0": "permanent"}, pids[name])
    assert_no_cookie_left(fleet, outputs, watcher)
    assert_owned_and_restartable(fleet, "2.0.0")

    with CookieWatcher(fleet) as watcher:
        rc, results, output = adhoc(fleet, inventory, "otp_release", "otp.release.downgrade",
                                    "root={{ otp_release_root }} version=1.0.0")
    assert rc == 0, output
    for name, host in fleet.hosts.items():
        status, result = results[name]
        assert (status, result["from_version"], result["to_version"]) == ("CHANGED", "2.0.0", "1.0.0"), output
        assert node_state(fleet, host)[:2] == ("1.0.0", {"1.0.0": "permanent", "2.0.0": "old"})
    assert_no_cookie_left(fleet, [output], watcher)
    assert_owned_and_restartable(fleet, "1.0.0")


@pytest.mark.parametrize("become", BECOME)
def test_first_install_into_an_empty_root_then_the_app_user_starts_it(ssh_fleet, world, tmp_path, become):
    fleet = ssh_fleet
    fleet.reset(empty=list(fleet.hosts))
    inventory = fleet.inventory(tmp_path / "inventory.ini", become_user=become)
    rc, results, output = adhoc(fleet, inventory, "otp_release", "otp.release.unpack",
                                "root={{ otp_release_root }} src=%s" % world["1.0.0"])
    assert rc == 0, output
    for name, host in fleet.hosts.items():
        assert results[name][0] == "CHANGED" and results[name][1]["version"] == "1.0.0", output
        stat = host.root.stat()
        assert (stat.st_uid, stat.st_mode & 0o7777) == (host.home.stat().st_uid, 0o750), "%s: the root itself changed" % name
        assert (host.root / "releases" / "1.0.0" / "kvstore.rel").is_file()
        assert sorted(path.name for path in host.home.iterdir() if path.name.startswith(".otp")) == []
    for host in fleet.hosts.values():
        assert fleet.not_owned(host) == [], "%s: not owned by %s" % (host.name, host.user)
        fleet.start_node(host)
        assert node_state(fleet, host)[:2] == ("1.0.0", {"1.0.0": "permanent"})
    assert_owned_and_restartable(fleet, "1.0.0")


def test_an_unreachable_host_and_a_stopped_node_stop_the_rollout_before_any_change(ssh_fleet, world, tmp_path):
    fleet = ssh_fleet
    app1, app3 = fleet.hosts["app1"], fleet.hosts["app3"]
    pid = fleet.start_node(app1)
    fleet.start_node(fleet.hosts["app2"])
    # app3's node is not started; app2 is behind an address where no sshd listens
    inventory = fleet.inventory(tmp_path / "inventory.ini", host_vars={"app2": {"ansible_host": UNREACHABLE_ADDRESS}})
    before = root_listing(fleet, app1)
    variables = upgrade_vars(fleet, world)

    rc, output, _elapsed = playbook(fleet, inventory, "otp.release.migrate_then_upgrade", variables)
    assert rc != 0
    assert "Nothing was changed on any host" in output, output
    assert re.search(r"app2 is unreachable: .*127\.0\.0\.5", output), output
    assert re.search(r"app3: the node of %s is down" % re.escape(str(app3.root)), output), output
    assert "otp_release_allow_down_hosts=true" in output
    rows = report_rows(output)
    assert re.match(r"\?\s+\?\s+\?\s+-\s+-\s+unreachable\s+\S", rows["app2"]), output
    assert re.match(r"1\.0\.0\s+1\.0\.0\s+1\.0\.0\s+-\s+-\s+down\b", rows["app3"]), output
    assert re.match(r"1\.0\.0\s+1\.0\.0\s+1\.0\.0\s+-\s+-\s+up\b", rows["app1"]), output
    assert root_listing(fleet, app1) == before
    assert node_state(fleet, app1) == ("1.0.0", {"1.0.0": "permanent"}, pid)
    assert migrations(fleet) == [], "the migration ran"

    rc, output, _elapsed = playbook(fleet, inventory, "otp.release.report")
    assert rc == 0, output
    rows = report_rows(output)
    assert "unreachable" in rows["app2"] and re.search(r"\bdown\b", rows["app3"]) and re.search(r"\bup\b", rows["app1"]), output

    variables["otp_release_allow_down_hosts"] = True
    rc, output, _elapsed = playbook(fleet, inventory, "otp.release.migrate_then_upgrade", variables)
    assert rc == 0, output
    assert re.search(r"Skipped, as otp_release_allow_down_hosts is set: app2, app3", output), output
    assert node_state(fleet, app1) == ("2.0.0", {"1.0.0": "old", "2.0.0": "permanent"}, pid)
    rows = report_rows(output)
    assert "unreachable" in rows["app2"] and re.search(r"\bdown\b", rows["app3"]), output
    assert re.match(r"2\.0\.0\s+2\.0\.0\s+2\.0\.0\b", rows["app1"]), output
    assert (app3.root / "releases" / "2.0.0").exists() is False
    assert fleet.not_owned(app1) == []


def test_report_shows_a_host_without_a_root_and_an_unreachable_host(ssh_fleet, tmp_path):
    fleet = ssh_fleet
    fleet.start_nodes()
    inventory = fleet.inventory(tmp_path / "inventory.ini", host_vars={"app3": {"ansible_host": UNREACHABLE_ADDRESS}})
    with inventory.open("a") as handle:
        handle.write("\n[otp_release]\nnorelease ansible_host=127.0.0.2 ansible_connection=local\n")
    rc, output, _elapsed = playbook(fleet, inventory, "otp.release.report")
    assert rc == 0, output
    rows = report_rows(output)
    assert re.search(r"\bup\b", rows["app1"]) and re.search(r"\bup\b", rows["app2"]), output
    assert re.search(r"unreachable\s+.*127\.0\.0\.5", rows["app3"]), output
    assert "no otp_release_root" in rows["norelease"], output


def test_a_root_the_nodes_user_cannot_write_blocks_staging_before_any_node_changes(ssh_fleet, world, tmp_path):
    """app2's lib/ is not writable by app2's user (release_handler unpacks there, as that user): staging stops the
    rollout for every host, with the plan table naming app2 and why, before the migration and before any node
    changes; --check says the same and changes nothing."""
    fleet = ssh_fleet
    pids = fleet.start_nodes()
    app2 = fleet.hosts["app2"]
    lib = app2.root / "lib"
    lib.chmod(0o555)
    try:
        inventory = fleet.inventory(tmp_path / "inventory.ini")
        variables = upgrade_vars(fleet, world)
        listings = dict((name, root_listing(fleet, host)) for name, host in fleet.hosts.items())
        rc, checked, _elapsed = run_check(fleet, inventory, variables)
        assert rc != 0, checked
        assert re.search(r"app2: The node of %s runs as %s, who cannot write %s" % (
            re.escape(str(app2.root)), app2.user, re.escape(str(lib))), checked), checked
        assert dict((name, root_listing(fleet, host)) for name, host in fleet.hosts.items()) == listings

        rc, output, _elapsed = playbook(fleet, inventory, "otp.release.migrate_then_upgrade", variables)
        assert rc != 0, output
        assert "No node was changed" in output and re.search(r"app2: The node of .* cannot write", output), output
        assert migrations(fleet) == [], "the migration ran"
        for name, host in fleet.hosts.items():
            version, states, pid = node_state(fleet, host)
            assert (version, states["1.0.0"], pid) == ("1.0.0", "permanent", pids[name])
        assert "2.0.0" not in node_state(fleet, app2)[1]
    finally:
        lib.chmod(0o755)


def run_check(fleet, inventory, variables):
    started = time.monotonic()
    rc, output = run_playbook("otp.release.migrate_then_upgrade", variables, inventory=inventory, env=fleet.ansible_env(),
                              interpreter=None, check=True)
    return rc, output, time.monotonic() - started
