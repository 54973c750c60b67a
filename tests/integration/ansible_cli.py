"""Run collection modules and playbooks through the real `ansible-playbook` CLI against localhost.

ansible-core has no JSON stdout callback of its own (`json` lives in ansible.posix), and the ad-hoc
`ansible` command always prints with `minimal`, which drops the result of a skipped task. So a module
runs as the one task of a generated playbook, with the `default` callback at `-v`: it prints every
result (ok, changed, failed, skipped) as JSON after `=> `, which is read back here.

Module arguments and extra vars travel in files (mode 0600), never on the command line, which `ps`
shows: a cookie passed as an argument stays private. The ansible processes get os.environ, so
ANSIBLE_COLLECTIONS_PATH (set by tests/conftest.py) and ERL_EPMD_PORT (the private epmd) reach the
modules.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
TASK_NAME = "module under test"
RESULT_LINE = re.compile(r"^(ok|changed|skipping|fatal): \[localhost\](?:: FAILED!)? => (?=\{)", re.M)
CLI_ENV = {
    "ANSIBLE_STDOUT_CALLBACK": "default",
    "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
    "ANSIBLE_DISPLAY_OK_HOSTS": "1",
    "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "1",
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_FORCE_COLOR": "0",
    "ANSIBLE_HOST_KEY_CHECKING": "0",
    "ANSIBLE_RETRY_FILES_ENABLED": "0",
    "ANSIBLE_DEPRECATION_WARNINGS": "0",
}


def _private_json(directory, name, data):
    path = Path(directory) / name
    with os.fdopen(os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        json.dump(data, handle)
    return path


def run_playbook(path, extra_vars=None, inventory=None, check=False, env=None, verbose=False, timeout=900,
                 interpreter=sys.executable):
    """(rc, output) of `ansible-playbook path`; output is stdout and stderr together.

    Without inventory the play runs on `localhost,` over the local connection. `interpreter` (default: the
    controller's own Python) is every host's interpreter; None leaves it to the inventory."""
    with tempfile.TemporaryDirectory(prefix="ansible-cli-") as work:
        variables = dict(extra_vars or {})
        if interpreter:
            variables["ansible_python_interpreter"] = interpreter
        argv = [ANSIBLE_PLAYBOOK, str(path), "-e", "@%s" % _private_json(work, "extra_vars.json", variables)]
        argv += ["-i", "localhost,", "-c", "local"] if inventory is None else ["-i", str(inventory)]
        if check:
            argv.append("--check")
        if verbose:
            argv.append("-v")
        done = subprocess.run(argv, env=dict(os.environ, **dict(CLI_ENV, **(env or {}))), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
    return done.returncode, done.stdout


def run_module(module, args, check=False, env=None):
    """(rc, result) of one otp.release module (or any FQCN) on localhost; result is the module's result as JSON
    (minus `invocation`, `diff` and `warnings`, which the callback leaves out), with `failed` and `skipped` set. rc is
    ansible-playbook's: 0, or 2 when the module failed."""
    if "." not in module:
        module = "otp.release." + module
    with tempfile.TemporaryDirectory(prefix="ansible-cli-") as work:
        play = [{"hosts": "all", "gather_facts": False, "tasks": [{"name": TASK_NAME, module: args}]}]
        rc, output = run_playbook(_private_json(work, "play.yml", play), check=check, env=env, verbose=True)
    task_at = output.find("TASK [%s]" % TASK_NAME)
    match = RESULT_LINE.search(output, max(task_at, 0))
    if task_at < 0 or not match:
        raise AssertionError("ansible-playbook printed no result (rc {0}):\n{1}".format(rc, output[-5000:]))
    result = json.JSONDecoder().raw_decode(output, match.end())[0]
    # the callback leaves out `failed` and `skipped`; the line says them
    result["failed"] = match.group(1) == "fatal"
    result["skipped"] = match.group(1) == "skipping"
    return rc, result
