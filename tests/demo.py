"""Three local kvstore nodes on 1.0.0 with data, the migrate_then_upgrade playbook to 2.0.0, an ad-hoc
downgrade of one node, and what the nodes say after each step. Every node and the epmd it uses are
stopped at the end."""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "integration"))
sys.path.insert(0, str(HERE))

# conftest puts this checkout on ANSIBLE_COLLECTIONS_PATH as otp.release
import conftest  # noqa: E402,F401  pylint: disable=unused-import
import world  # noqa: E402
from ansible_collections.otp.release.plugins.module_utils._erlterm import parse, to_plain  # noqa: E402

HOSTS = ("app1", "app2", "app3")
BIN = Path(sys.executable).parent


def banner(text):
    print("\n\033[1m== %s\033[0m" % text if sys.stdout.isatty() else "\n== %s" % text, flush=True)


def show(nodes):
    print("%-5s %-8s %-10s %-6s %-7s %s" % ("host", "version", "state", "shape", "OS pid", "data"))
    for host, node in nodes.items():
        version, state, shape, pid, data = to_plain(parse(node.rpc(
            "begin V = kvstore:version(), "
            "{V, hd([S || {_, RV, _, S} <- release_handler:which_releases(), RV =:= V]), kvstore:state_shape(), "
            "os:getpid(), [{K, element(2, kvstore:get(K))} || K <- lists:sort(kvstore:keys())]} end")))
        print("%-5s %-8s %-10s %-6s %-7s %s" % (host, version, state, shape, pid, ", ".join("%s=%s" % tuple(kv) for kv in data)))


def show_schema(database):
    with sqlite3.connect(str(database)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(kv)")]
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    print("database: tables %s; columns of kv: %s" % (", ".join(tables), ", ".join(columns)))


def run(argv, env):
    print("$ " + " ".join(a if " " not in a else "'%s'" % a for a in argv), flush=True)
    return subprocess.run(argv, env=env, check=False).returncode


def main():
    banner("Building the test world (cached after the first run)")
    tarballs = world.build_world()
    epmd = world.Epmd()
    os.environ["ERL_EPMD_PORT"] = str(epmd.port)
    workdir = Path(tempfile.mkdtemp(prefix="otp-release-demo-"))
    database = workdir / "kvstore.db"
    nodes = {}
    try:
        banner("Deploying kvstore 1.0.0 on three local nodes that share one SQLite database")
        for host in HOSTS:
            root = world.deploy(world.tarball_path(tarballs, "1.0.0"))
            nodes[host] = node = world.Node(root, env={"KVSTORE_DB": str(database)})
            node.start()
        for key, value in (("alice", "1"), ("bob", "2"), ("carol", "3")):
            nodes["app1"].rpc('kvstore:put(<<"%s">>, <<"%s">>)' % (key, value))
        show(nodes)
        show_schema(database)

        inventory = workdir / "inventory.ini"
        inventory.write_text("[otp_release]\n" + "".join(
            "%s ansible_connection=local ansible_python_interpreter=%s otp_release_root=%s otp_release_cookie_file=%s\n"
            % (host, sys.executable, node.root, node.cookie_file) for host, node in nodes.items()))
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1" if not sys.stdout.isatty() else "0")
        extra = {
            "otp_release_src": str(world.tarball_path(tarballs, "2.0.0")),
            "otp_release_version": "2.0.0",
            "otp_release_migrate_mfa": {"module": "kv_migrate", "function": "run"},
            "otp_release_health_mfa": {"module": "kvstore", "function": "health"},
            "otp_release_environment": {"KVSTORE_DB": str(database)},
        }
        banner("ansible-playbook otp.release.migrate_then_upgrade: migrate once, then hot-upgrade each node to 2.0.0")
        if run([str(BIN / "ansible-playbook"), "-i", str(inventory), "otp.release.migrate_then_upgrade",
                "-e", json.dumps(extra)], env):
            raise SystemExit("the playbook failed")
        banner("After the upgrade: same OS pids, state in the 2.0.0 shape, 2.0.0 permanent")
        show(nodes)
        show_schema(database)

        banner("Ad-hoc downgrade of app2 to the previous release")
        if run([str(BIN / "ansible"), "app2", "-i", str(inventory), "-m", "otp.release.downgrade",
                "-a", "root=%s" % nodes["app2"].root], env):
            raise SystemExit("the downgrade failed")
        banner("After the downgrade: app2 is back on 1.0.0 hot; the schema stays migrated")
        show(nodes)
        show_schema(database)
    finally:
        banner("Stopping the nodes")
        for node in nodes.values():
            node.stop()
        epmd.stop()


if __name__ == "__main__":
    main()
