# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The only user of AnsibleModule: every module's main() is run(<its name>). Here the module's options become the
typed arguments of one operation, and its answer or error becomes the result."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.otp.release.plugins.module_utils._argspec import CONTROLLER_ONLY, SPECS
from ansible_collections.otp.release.plugins.module_utils._change import ChangeOptions
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError, failure_fields
from ansible_collections.otp.release.plugins.module_utils._oneoff import run_eval
from ansible_collections.otp.release.plugins.module_utils._pipeline import Health, upgrade
from ansible_collections.otp.release.plugins.module_utils._remove import remove_releases
from ansible_collections.otp.release.plugins.module_utils._restart import RestartOptions, change_by_strategy
from ansible_collections.otp.release.plugins.module_utils._session import Session, user_name
from ansible_collections.otp.release.plugins.module_utils._unpack import Source, unpack
from ansible_collections.otp.release.plugins.module_utils._verify import verify

# What eval reports of the root: not the node's live facts, as it never talks to the node.
LIVE_FACTS = ("running", "os_pid", "erts_running")
# Options that name one directory or file under the root (releases/<version>/<name>.rel): one path component each.
PATH_COMPONENTS = ("name", "version")
# Options that become Erlang atoms, which hold at most 255 characters.
ATOM_OPTIONS = ("module", "function", "node", "cookie", "start_apps", "failed_when_result")
ATOM_LIMIT = 255
PATH_LIMIT = 4095
SECRET_OPTIONS = ("cookie",)
DATA_OPTIONS = ("args",)  # terms for the function: any text, any length


def _strings(value):
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [item for item in value if isinstance(item, str)]
    if isinstance(value, dict):
        return [item for item in value.values() if isinstance(item, str)]
    return []


def _shown(option, text):
    if option in SECRET_OPTIONS:
        return "(%d characters, not shown)" % len(text)
    return repr(text if len(text) <= 60 else text[:60] + "...") + ("" if len(text) <= 60 else " (%d characters)" % len(text))


def refuse_bad_values(params):
    """Refuse option values that would leave the root or that the node cannot take, before anything runs: a version or
    name that is not one path component, NUL characters, atoms over 255 characters, paths over PATH_MAX."""
    for option, value in sorted(params.items()):
        if option in DATA_OPTIONS:
            continue
        for text in _strings(value):
            if "\0" in text:
                raise OtpReleaseError("%s %s holds a NUL character, which no file name or Erlang atom can hold." % (option, _shown(option, text)))
            limit = ATOM_LIMIT if option in ATOM_OPTIONS or option in PATH_COMPONENTS or option == "health" else PATH_LIMIT
            if len(text.encode("utf-8")) > limit:
                raise OtpReleaseError("%s %s is too long: at most %d bytes (%s)." % (
                    option, _shown(option, text), limit, "an Erlang atom" if limit == ATOM_LIMIT else "a path"))
        if option in PATH_COMPONENTS and isinstance(value, str) and (value in ("", ".", "..") or "/" in value):
            raise OtpReleaseError("%s %s is not a plain %s: it would name a path outside releases/<version>/ of the root. Give "
                                  "it as written in the .rel file, e.g. 2.0.0." % (option, _shown(option, value), option))


def session_of(params):
    return Session(params["root"], params.get("name"), params.get("node"), params.get("cookie"), params.get("cookie_file"),
                   params.get("timeout") or 60, params.get("channel") or "auto", epmd_port=params.get("epmd_port"))


def source_of(params):
    """The tarball of unpack/upgrade: on this host with remote_src, else still on the controller (the action sends it)."""
    for option in CONTROLLER_ONLY:
        if params.get(option):
            raise OtpReleaseError("%s is checked on the controller by the module's action plugin; it cannot be checked on the "
                                  "host. Run the module as a task (through its action)." % option)
    if not params.get("src"):
        return None
    return Source(params["src"], params["remote_src"], params.get("name"), params.get("version"), params.get("checksum"),
                  params.get("allow_missing_erts"), params.get("max_unpacked_size"), params.get("owner"), params.get("group"))


def change_options(params):
    return ChangeOptions(params["permanent"], params["purge"], params.get("code_change_timeout"), params.get("suspend_timeout"),
                         params["relup_review"])


def restart_options(params):
    return RestartOptions(params.get("start_command"), params["stop_timeout"], params["start_timeout"])


@contextlib.contextmanager
def changing(session, check_mode):
    """A run that may change the root must be able to act as the node's user, and holds the root's lock; check mode
    refuses the same but changes nothing and takes no lock."""
    refuse_build_directory(session.release.root)
    session.require_owner()
    if check_mode:
        yield
        return
    with session.locked():
        yield


def refuse_build_directory(root):
    """Hot upgrades cannot run from a build tree: the build tools rewrite it under the running node."""
    parts = root.split(os.sep)
    if "_build" in parts:
        raise OtpReleaseError("%s is inside a build directory (%s): upgrades cannot be performed from within _build/, which "
                              "rebar3 and mix rewrite under the running node. Deploy the release tarball to a root of its own "
                              "(e.g. /opt/<name>) and run it from there. Nothing was changed."
                              % (root, os.sep.join(parts[:parts.index("_build") + 1])))


def do_info(params, _check_mode):
    return dict(session_of(params).require_root().gather(), changed=False)


def session_with_source(params, source):
    """The session of a run with a tarball on this host: inspected first (nothing is touched before it passed), and
    its release name is the root's when the root names none yet (a first install)."""
    session = session_of(params)
    if source is not None and source.on_host and os.path.exists(source.path):
        source.inspect()
        session.release.assume_name(source.name)
    return session


def do_unpack(params, check_mode):
    source = source_of(params)
    if source is None:
        raise OtpReleaseError("src is required: the release tarball to unpack.")
    session = session_with_source(params, source)
    with changing(session, check_mode):
        return unpack(session, source, check_mode)


def do_verify_erts(params, _check_mode):
    return verify(session_of(params), params.get("version"), params.get("src"), name=params.get("name"))


def do_upgrade(params, check_mode):
    health = params.get("health")
    if health is not None:
        health = Health(health.get("module"), health.get("function"), health.get("args"), params["health_timeout"] or 10)
    source = source_of(params)
    session = session_with_source(params, source)
    if source is None:
        session.require_root()
    with changing(session, check_mode):
        return upgrade(session, params.get("version"), change_options(params), source, health, params.get("keep"), check_mode,
                       params["strategy"], restart_options(params))


def do_downgrade(params, check_mode):
    session = session_of(params).require_root()
    with changing(session, check_mode):
        return change_by_strategy(session, params.get("version"), "down", change_options(params), params["strategy"],
                                  restart_options(params), check_mode)


def do_remove(params, check_mode):
    session = session_of(params).require_root()
    with changing(session, check_mode):
        return remove_releases(session, params["keep"], params.get("version"), check_mode)


def do_eval(params, check_mode):
    session = session_of(params).require_root()
    facts = dict((k, v) for k, v in session.facts().items() if k not in LIVE_FACTS)
    result = run_eval(session.release, params["version"], params["module"], params["function"], params["args"],
                      params["start_apps"], params["strings_as"], params["failed_when_result"], params["timeout"], check_mode,
                      max_output=params["max_output"])
    return dict(facts, **result)


OPERATIONS = dict(info=do_info, unpack=do_unpack, verify_erts=do_verify_erts, upgrade=do_upgrade, downgrade=do_downgrade,
                  remove=do_remove, eval=do_eval)


def terminated(_signum, _frame):
    """SIGTERM: leave through the finally blocks, which remove the private HOME and end the programs we started."""
    raise SystemExit(143)


def run(name):
    """main() of module otp.release.<name>: parse the options, run the operation, exit with its result."""
    module = AnsibleModule(**SPECS[name].module_kwargs())
    # a task timeout or Ctrl-C ends the run with SIGTERM: exit through the finally blocks (private HOME, cookie)
    signal.signal(signal.SIGTERM, terminated)
    started = time.monotonic()
    try:
        refuse_bad_values(module.params)
        result = OPERATIONS[name](module.params, module.check_mode)
    except OtpReleaseError as exc:
        fields = failure_fields(exc)
        for warning in fields.pop("warnings", []):
            module.warn(warning)
        module.fail_json(msg=exc.msg, **fields)
    except PermissionError as exc:
        module.fail_json(msg="Permission denied: user %s cannot use %s (%s). Run the task as the owner of the release root "
                         "(become_user) or as root." % (user_name(os.geteuid()), exc.filename, exc.strerror))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    result.setdefault("duration_ms", int((time.monotonic() - started) * 1000))
    module.exit_json(**result)
