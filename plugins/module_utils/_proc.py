# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one place that runs or starts a program (run_command, the seam unit tests replace; launch, which starts a node
as its user), the erlexec command line of a VM booted from a release, and the private HOME that carries a cookie."""

from __future__ import annotations

import contextlib
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import tempfile
import time

from ansible_collections.otp.release.plugins.module_utils._errors import NodeError

# Variables the Erlang launcher reads flags or library paths from: emptied so that nothing but our own
# command line shapes the VM (an ERL_FLAGS="-name x" would otherwise start distribution).
CLEARED_ENV = ("ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_LIBS")


class Output(str):
    """A program's output as text; cut_bytes: how many bytes past the cap were read and dropped."""

    cut_bytes = 0


def _decoded(data, dropped):
    text = Output(data.decode("utf-8", "replace"))
    text.cut_bytes = dropped
    return text


def _exchange(proc, stdin_bytes, max_output, deadline):
    """Write stdin_bytes, read stdout and stderr until both close; keep at most max_output bytes of each (None: all).
    Returns ([stdout, stderr], [bytes dropped of each]); raises subprocess.TimeoutExpired past deadline."""
    kept, dropped = [bytearray(), bytearray()], [0, 0]
    with selectors.DefaultSelector() as selector:
        if proc.stdin:
            if stdin_bytes:
                selector.register(proc.stdin, selectors.EVENT_WRITE)
            else:
                proc.stdin.close()
        selector.register(proc.stdout, selectors.EVENT_READ, 0)
        selector.register(proc.stderr, selectors.EVENT_READ, 1)
        while selector.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise subprocess.TimeoutExpired(proc.args, 0)
            for key, _events in selector.select(wait):
                if key.fileobj is proc.stdin:
                    try:
                        written = os.write(proc.stdin.fileno(), stdin_bytes[:65536])
                    except BrokenPipeError:
                        written = len(stdin_bytes)
                    stdin_bytes = stdin_bytes[written:]
                    if not stdin_bytes:
                        selector.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                room = len(chunk) if max_output is None else max(0, max_output - len(kept[key.data]))
                kept[key.data] += chunk[:room]
                dropped[key.data] += len(chunk) - min(room, len(chunk))
    return kept, dropped


def run_command(argv, stdin_text=None, env=None, timeout=None, max_output=None):
    """Run argv[0] (an absolute path) with LANG=C; returns (rc, stdout, stderr) as Output texts.

    max_output: at most that many bytes of stdout and of stderr are kept (the rest is read and dropped, so memory
    stays bounded whatever the program prints); Output.cut_bytes says how much was dropped."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["LANG"] = full_env["LC_ALL"] = "C"
    deadline = None if timeout is None else time.monotonic() + timeout
    stdin = subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL
    with subprocess.Popen(argv, env=full_env, stdin=stdin,  # pylint: disable=ansible-bad-function
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            kept, dropped = _exchange(proc, (stdin_text or "").encode("utf-8"), max_output, deadline)
            proc.wait(None if deadline is None else max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise NodeError("timeout", "%s did not finish within %s s." % (os.path.basename(argv[0]), timeout))
        except BaseException:
            # SIGTERM (SystemExit) or any error: the program does not outlive us
            proc.kill()
            proc.wait()
            raise
    return proc.returncode, _decoded(bytes(kept[0]), dropped[0]), _decoded(bytes(kept[1]), dropped[1])


def erlexec_command(erts_bin, boot, boot_vars, args, env=None):
    """argv and environment of a hidden VM of a release's ERTS booted with boot (a path without .boot).
    -hidden also tells find_node_process that this VM, which carries the release's -root, is not the node."""
    argv = [os.path.join(erts_bin, "erlexec"), "-boot", boot]
    for var, value in sorted((boot_vars or {}).items()):
        argv += ["-boot_var", var, value]
    argv += ["-hidden", "-noshell", "-noinput"] + list(args)
    root = os.path.dirname(os.path.dirname(erts_bin))
    vm_env = dict(env or {}, ROOTDIR=root, BINDIR=erts_bin, EMU="beam", PROGNAME="erl")
    vm_env.update((name, "") for name in CLEARED_ENV)
    return argv, vm_env


HOME_PREFIX = "otp-release-home-"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def sweep_homes(directory=None):
    """Remove the private HOMEs (and their cookies) that killed runs of ours left: those whose process is gone."""
    directory = directory or tempfile.gettempdir()
    for entry in os.listdir(directory):
        if not entry.startswith(HOME_PREFIX):
            continue
        pid = entry[len(HOME_PREFIX):].split("-", 1)[0]
        path = os.path.join(directory, entry)
        try:
            if pid.isdigit() and not _alive(int(pid)) and os.stat(path).st_uid == os.getuid():
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


@contextlib.contextmanager
def private_home(cookie):
    """A temporary HOME (0700) holding only .erlang.cookie (0400); removed on exit, and by a later run when this one
    was killed (its name carries our pid)."""
    sweep_homes()
    home = tempfile.mkdtemp(prefix="%s%d-" % (HOME_PREFIX, os.getpid()))
    try:
        os.chmod(home, 0o700)
        fd = os.open(os.path.join(home, ".erlang.cookie"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as cookie_file:
            cookie_file.write(cookie)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _as_user(owner):
    """preexec_fn that makes the child the node's OS user, when we are root and it is not."""
    if owner is None or os.geteuid() != 0 or owner[0] == 0:
        return None
    uid, gid = owner

    def demote():
        try:
            os.initgroups(pwd.getpwuid(uid).pw_name, gid)
        except KeyError:
            os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return demote


def launch(argv, env, cwd, owner, seconds):
    """Run the start command as the node's user; it returns once the node is on its way (run_erl -daemon).
    Returns (rc or None when it did not return within seconds, its output)."""
    with tempfile.TemporaryFile(mode="w+") as output:
        # not run_command: the node's start must outlive this call, and runs as the node's user
        child = subprocess.Popen(  # pylint: disable=ansible-bad-function,subprocess-popen-preexec-fn
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            preexec_fn=_as_user(owner), start_new_session=True)
        try:
            rc = child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            rc = None
        output.seek(0)
        return rc, output.read()[-2000:]
