"""The collection as users get it: built with `ansible-galaxy collection build`, installed into a fresh collections
path, documented by `ansible-doc` from there, driving a real node from there, and installable into an execution
environment by `ansible-builder`."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from ansible_cli import run_module

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What the built tarball may hold at its top level, and no more.
TOP_LEVEL = {"FILES.json", "MANIFEST.json", "README.md", "LICENSE", "CHANGELOG.md", "requirements.txt", "bindep.txt",
             "changelogs", "meta", "plugins", "playbooks", "roles"}
NEVER_PARTS = {"__pycache__", ".venv", "tests", "bench", "_build", ".pytest_cache", "fragments", ".plugin-cache.yaml", ".git"}
NEVER_SUFFIXES = (".pyc", ".tar.gz", ".retry")


def run(argv, env=None, cwd=None):
    done = subprocess.run([str(arg) for arg in argv], env=dict(os.environ, **(env or {})), cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600, check=False)
    assert done.returncode == 0, "{0} failed ({1}):\n{2}\n{3}".format(argv, done.returncode, done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout


class Installed(object):
    def __init__(self, tarball, collections_path):
        self.tarball = tarball
        self.collections_path = collections_path
        self.root = collections_path / "ansible_collections" / "otp" / "release"
        self.env = {"ANSIBLE_COLLECTIONS_PATH": str(collections_path)}

    def doc(self, plugin_type, *names):
        argv = [BIN / "ansible-doc", "-t", plugin_type, "--json"] + (list(names) or ["-l", "otp.release"])
        return json.loads(run(argv, env=self.env))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("installed")
    run([BIN / "ansible-galaxy", "collection", "build", "--output-path", base / "dist", REPO])
    (tarball,) = (base / "dist").glob("otp-release-*.tar.gz")
    collections_path = base / "collections"
    run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", collections_path, tarball],
        env={"ANSIBLE_COLLECTIONS_PATH": str(collections_path)})
    return Installed(tarball, collections_path)


def tracked(*top):
    listed = run(["git", "-C", REPO, "ls-files", "--"] + list(top)).split()
    return set(name for name in listed if (REPO / name).exists())


def test_the_tarball_holds_what_a_user_needs_and_nothing_else(installed):
    with tarfile.open(str(installed.tarball)) as archive:
        members = [member.name for member in archive.getmembers()]
    assert set(name.split("/")[0] for name in members) == TOP_LEVEL
    assert not [name for name in members if NEVER_PARTS & set(name.split("/")) or name.endswith(NEVER_SUFFIXES)]
    files = set(name for name in members if "/" in name and not name.endswith("/"))
    assert tracked("plugins", "roles", "playbooks", "meta") <= files
    manifest = json.loads((installed.root / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    size = installed.tarball.stat().st_size
    print("built collection: {0} ({1} bytes, {2} members)".format(installed.tarball.name, size, len(members)))
    assert size < 1024 * 1024


def untyped(options, where):
    """Paths of the options or return values (with their suboptions) that declare no type."""
    missing = []
    for name, spec in (options or {}).items():
        if "type" not in spec:
            missing.append(where + name)
        missing += untyped(spec.get("suboptions") or spec.get("options") or spec.get("contains"), where + name + ".")
    return missing


def examples_problems(name, text):
    """Problems of a module's EXAMPLES: not YAML, not a list of tasks, a task whose action is not a FQCN."""
    tasks = yaml.safe_load(text)
    if not isinstance(tasks, list) or not tasks:
        return ["%s: EXAMPLES is not a list of tasks" % name]
    problems = []
    for task in tasks:
        for task in task.get("block", [task]):
            actions = [key for key in task if key not in TASK_KEYWORDS]
            if len(actions) != 1 or actions[0].count(".") < 2:
                problems.append("%s: task %r uses %s, not one FQCN action" % (name, task.get("name"), actions))
    return problems


TASK_KEYWORDS = {"name", "register", "when", "loop", "vars", "delegate_to", "run_once", "become", "become_user",
                 "environment", "check_mode", "diff", "changed_when", "failed_when", "ignore_errors", "tags",
                 "module_defaults", "until", "retries", "delay", "no_log", "notify", "loop_control", "block"}


def test_ansible_doc_documents_every_plugin_and_role_of_the_installed_copy(installed):
    modules = installed.doc("module")
    assert sorted(modules) == sorted("otp.release." + p.stem for p in (REPO / "plugins" / "modules").glob("*.py"))
    filters = installed.doc("filter")
    assert sorted(filters) == sorted("otp.release." + p.stem for p in (REPO / "plugins" / "filter").glob("*.yml"))
    roles = installed.doc("role")
    assert sorted(roles) == sorted("otp.release." + p.name for p in (REPO / "roles").iterdir())

    problems = []
    for plugin_type, names in (("module", modules), ("filter", filters)):
        for name, entry in installed.doc(plugin_type, *names).items():
            assert entry["doc"]["filename"].startswith(str(installed.root) + "/"), entry["doc"]["filename"]
            problems += untyped(entry["doc"].get("options"), "%s option " % name)
            problems += untyped(entry.get("return"), "%s return " % name)
            problems += examples_problems(name, entry["examples"])
    for name, entry in installed.doc("role", *roles).items():
        assert entry["path"] == str(installed.root), entry["path"]
        for entry_point, spec in entry["entry_points"].items():
            problems += untyped(spec.get("options"), "%s:%s option " % (name, entry_point))
    assert not problems


def test_upgrade_and_downgrade_with_the_installed_copy(installed, world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    pid = node.os_pid()
    rc, up = run_module("otp.release.upgrade", dict(root=str(node.root), cookie_file=str(node.cookie_file), src=world["2.0.0"],
                                                    version="2.0.0"), env=installed.env)
    assert rc == 0 and (up["from_version"], up["to_version"]) == ("1.0.0", "2.0.0"), up
    assert node.rpc("kvstore:version()") == '"2.0.0"' and node.os_pid() == pid
    rc, down = run_module("otp.release.downgrade", dict(root=str(node.root), cookie_file=str(node.cookie_file)), env=installed.env)
    assert rc == 0 and (down["from_version"], down["to_version"]) == ("2.0.0", "1.0.0"), down
    assert node.rpc("kvstore:version()") == '"1.0.0"' and node.os_pid() == pid


def test_ansible_builder_takes_the_dependencies_and_makes_a_build_context(installed, tmp_path):
    introspected = yaml.safe_load(run([BIN / "ansible-builder", "introspect", "--sanitize", installed.collections_path]))
    ours = sorted(line.split("  #")[0] for line in introspected["python"] if "from collection otp.release" in line)
    assert ours == ["cryptography", "jmespath"]
    assert not introspected["system"]

    dist = tmp_path / installed.tarball.name
    dist.write_bytes(installed.tarball.read_bytes())
    definition = dict(
        version=3,
        images=dict(base_image=dict(name="quay.io/fedora/python-311:latest")),
        dependencies=dict(python_interpreter=dict(package_system="python3"),
                          ansible_core=dict(package_pip="ansible-core>=2.17"),
                          ansible_runner=dict(package_pip="ansible-runner"),
                          galaxy=dict(collections=[dict(name="otp-release/" + dist.name, type="file")])),
        additional_build_files=[dict(src=dist.name, dest="otp-release")])
    (tmp_path / "execution-environment.yml").write_text(yaml.safe_dump(definition))
    run([BIN / "ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context", "--output-filename", "Containerfile"],
        cwd=str(tmp_path))
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install" in containerfile and "introspect" in containerfile
    assert (context / "_build" / "otp-release" / dist.name).read_bytes() == dist.read_bytes()
    assert yaml.safe_load((context / "_build" / "requirements.yml").read_text()) == definition["dependencies"]["galaxy"]
