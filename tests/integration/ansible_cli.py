"""Run one collection module through the real `ansible` ad-hoc CLI against localhost.

The arguments go to `-a` as JSON; pass secrets as files (cookie_file), never as arguments, since
the `ansible` command line is visible in `ps`."""

import json
import os
import subprocess
import sys
from pathlib import Path

ANSIBLE = str(Path(sys.executable).parent / "ansible")


def run_module(module, args, check=False, env=None):
    """(rc, result) of `ansible localhost -m otp.release.<module>`; result is the module's JSON result."""
    if "." not in module:
        module = "otp.release." + module
    argv = [ANSIBLE, "localhost", "-c", "local", "-i", "localhost,", "-m", module,
            "-a", json.dumps(args), "-e", "ansible_python_interpreter=" + sys.executable]
    if check:
        argv.append("--check")
    full_env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json",
                    ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0")
    full_env.update(env or {})
    done = subprocess.run(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=600, check=False)
    try:
        output = json.loads(done.stdout[done.stdout.index("{"):])
        result = output["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible gave no JSON result (rc {0}):\n{1}\n{2}".format(
            done.returncode, done.stdout[-3000:], done.stderr[-3000:]))
    return done.returncode, result
