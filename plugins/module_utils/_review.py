# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Review of a relup script before it is trusted: pure functions over plain data.

review(instructions, running_apps, target_apps, node=None) -> [finding]
  instructions  the script of one relup path as _erlterm parses it (the list in {From, Descr, Script}):
                the low-level instructions systools writes (load_object_code, point_of_no_return,
                load, remove, purge, suspend, resume, code_change, stop, start, apply, ...), and the
                high-level appup ones too (load_module, update, add_module, delete_module,
                remove_module, add_application, remove_application, restart_application).
  running_apps, target_apps
                {app: {"vsn": str, "modules": {module: _beam.Beam}}} of the release the node runs and
                of the one the script leads to (for a downgrade the target is the older one). Only
                applications whose vsn differs need modules; an app with the same vsn in both is
                skipped.
  node          facts from the node, as parse_node_facts returns them (None: not asked).

A finding is {"kind", "app", "module", "detail", "msg"}: module is None for an application-level
finding, detail is a short fact, msg one sentence for an operator that says what to add. Kinds:
  not_loaded                  code differs, but nothing loads, updates or removes the module
  added_not_loaded            a module new in the target that nothing adds
  removed_not_deleted         a module gone from the target that nothing deletes
  app_added_not_started       an application new in the target that nothing starts (or loads)
  app_removed_not_stopped     an application gone from the target that nothing stops
  supervisor_not_updated      a supervisor whose code changed (so, by proxy, its init/1 and child
                              specs) is loaded without a code_change, i.e. without
                              {update, Sup, supervisor}
  update_without_code_change  a code_change for a module that exports no code_change/3 (gen_server,
                              gen_event), code_change/4 (gen_statem) or system_code_change/4 (sys)
  purge_kills                 processes on code of a module the script purges: the purge kills them
  old_code_present            a module that already has old code loaded
The node side of the last two comes from node_facts_expr / parse_node_facts.

purged_modules(instructions, running_apps, target_apps) -> the modules the script loads, removes or
purges: the ones to ask the node about (node_facts_expr); none, no question.

decide(findings, mode) -> "ok" | "warn" | "refuse" for mode strict | warn | off.

After an upgrade: expected_code(running_apps, target_apps) -> {module: md5 or None} and
loaded_code_expr / parse_loaded_code / still_old(expected, loaded) -> [finding of kind still_old_code].
"""

from __future__ import annotations

from ._erlterm import Atom, Binary, Opaque, format_term, is_atom

__all__ = [
    "KINDS", "MODES", "decide", "expected_code", "loaded_code_expr", "node_facts_expr",
    "parse_loaded_code", "parse_node_facts", "purged_modules", "review", "still_old",
]

KINDS = (
    "not_loaded", "added_not_loaded", "removed_not_deleted", "app_added_not_started",
    "app_removed_not_stopped", "supervisor_not_updated", "update_without_code_change",
    "purge_kills", "old_code_present",
)
MODES = ("strict", "warn", "off")
CODE_CHANGE_EXPORTS = (("code_change", 3), ("code_change", 4), ("system_code_change", 4))


class _Script(object):
    """What one relup script does to each module and application."""

    def __init__(self, instructions, running_apps, target_apps):
        self.loaded = set()        # a new version is loaded: {load, ...}, load_module, update, add_module
        self.removed = set()       # {remove, ...}, delete_module, remove_module
        self.post_purged = set()   # the code it had when the script started is purged: brutal_purge, {purge, ...}
        self.code_change = {}      # module -> "up" | "down"
        self.suspended = set()     # its processes wait in their behaviour's loop (sys) while it is loaded
        self.started_apps = set()
        self.stopped_apps = set()
        self.running_apps = running_apps
        self.target_apps = target_apps
        readers = {
            "load": lambda spec: self.load(*spec),
            "remove": lambda spec: self.remove(*spec),
            "purge": self.post_purged.update,
            "suspend": self.read_suspend,
            "code_change": self.read_code_change,
            "apply": self.read_apply,
            # High-level appup instructions, for a script not translated by systools.
            "load_module": self.load_module,
            "add_module": self.load_module,
            "update": self.update,
            "delete_module": self.remove,
            "remove_module": self.remove,
            "add_application": self.add_application,
            "remove_application": self.remove_application,
            "restart_application": self.restart_application,
        }
        for instruction in instructions:
            if isinstance(instruction, tuple) and instruction and instruction[0] in readers:
                readers[instruction[0]](*instruction[1:])

    def load(self, module, _pre_purge="brutal_purge", post_purge="brutal_purge", *_rest):
        self.loaded.add(module)
        if post_purge == "brutal_purge":
            self.post_purged.add(module)

    def remove(self, module, _pre_purge="brutal_purge", post_purge="brutal_purge", *_rest):
        self.removed.add(module)
        if post_purge == "brutal_purge":
            self.post_purged.add(module)

    def load_module(self, module, *rest):
        self.load(module, *(rest if len(rest) >= 2 else ()))

    def update(self, module, *rest):
        self.load(module)
        self.suspended.add(module)
        if any(change == "supervisor" or (isinstance(change, tuple) and change[:1] == ("advanced",))
               for change in rest):
            self.code_change[module] = "up"

    def read_suspend(self, modules):
        self.suspended.update(module[0] if isinstance(module, tuple) else module for module in modules)

    def read_code_change(self, *args):
        mode, changes = ("up", args[0]) if len(args) == 1 else args
        for module, _extra in changes:
            self.code_change[module] = str(mode)

    def read_apply(self, mfa):
        module, function, args = mfa
        if module == "application" and args and function in ("start", "load"):
            self.started_apps.add(args[0])
        elif module == "application" and args and function == "stop":
            self.stopped_apps.add(args[0])

    def add_application(self, app, *_type):
        self.started_apps.add(app)
        for module in _modules(self.target_apps, app):
            self.load(module)

    def remove_application(self, app):
        self.stopped_apps.add(app)
        for module in _modules(self.running_apps, app):
            self.remove(module)

    def restart_application(self, app):
        self.remove_application(app)
        self.add_application(app)

    def replaces(self, module):
        """True when the script loads or removes the module (either purges its old code first)."""
        return module in self.loaded or module in self.removed


def _modules(apps, app):
    return apps.get(app, {}).get("modules", {})


def _finding(kind, app, module, detail, msg):
    return {"kind": kind, "app": app, "module": module, "detail": detail, "msg": msg}


def _label(app, apps):
    return "{0} {1}".format(app, apps[app].get("vsn")) if app in apps else app


def _suggested_instruction(module, beam):
    if "supervisor" in beam.behaviours:
        return "{{update, {0}, supervisor}}".format(module)
    if beam.behaviours:
        return "{{update, {0}, {{advanced, []}}}}".format(module)
    return "{{load_module, {0}}}".format(module)


# An application in one release only: kind, where it is, what the relup must do, the instruction.
_APP_CHANGES = {
    True: ("app_added_not_started", "is new in the target release", "starts", "add_application"),
    False: ("app_removed_not_stopped", "is not in the target release", "stops", "remove_application"),
}


def _review_apps(script, running_apps, target_apps):
    findings = []
    for app in sorted(set(running_apps) | set(target_apps)):
        if app in running_apps and app in target_apps:
            if running_apps[app].get("vsn") != target_apps[app].get("vsn"):
                findings.extend(_review_modules(script, app, running_apps, target_apps))
            continue
        added = app not in running_apps
        if app in (script.started_apps if added else script.stopped_apps):
            findings.extend(_review_modules(script, app, running_apps, target_apps))
            continue
        kind, where, verb, instruction = _APP_CHANGES[added]
        findings.append(_finding(
            kind, app, None, "application {0}, the relup never {1} it".format(where, verb),
            "Application {0} {1} but the relup never {2} it; add {{{3}, {4}}} to the relup.".format(
                _label(app, target_apps if added else running_apps), where, verb, instruction, app)))
    return findings


def _module_problem(script, module, old, new):
    """(kind, what the module did, what the relup lacks, what follows, instruction to add) or None."""
    if old is None:
        if module not in script.loaded:
            return ("added_not_loaded", "is new", "never loads it", "the node would run without it",
                    "{{add_module, {0}}}".format(module))
    elif new is None:
        if module not in script.removed:
            return ("removed_not_deleted", "is gone from the target", "never deletes it",
                    "the node would keep it loaded", "{{delete_module, {0}}}".format(module))
    elif old.md5 == new.md5:
        return None
    elif not (script.replaces(module) or module in script.post_purged):
        return ("not_loaded", "changed its code (md5 {0} -> {1})".format(old.md5, new.md5), "never loads it",
                "the node would keep running the old code after a successful upgrade",
                _suggested_instruction(module, new))
    elif "supervisor" in old.behaviours + new.behaviours and module not in script.code_change:
        return ("supervisor_not_updated", "is a supervisor that changed its code", "only loads it",
                "the running supervisor keeps its old child specs", "{{update, {0}, supervisor}}".format(module))
    return None


def _review_modules(script, app, running_apps, target_apps):
    findings = []
    running, target = _modules(running_apps, app), _modules(target_apps, app)
    versions = "{0} {1} -> {2}".format(app, running_apps.get(app, {}).get("vsn"), target_apps.get(app, {}).get("vsn"))
    for module in sorted(set(running) | set(target)):
        problem = _module_problem(script, module, running.get(module), target.get(module))
        if problem:
            kind, what, lack, consequence, instruction = problem
            findings.append(_finding(
                kind, app, module, "{0} {1}, the relup {2}".format(module, what, lack),
                "Module {0} ({1}) {2} but the relup {3}, so {4}; add {5} to {6}.appup.".format(
                    module, versions, what, lack, consequence, instruction, app)))
    return findings


def _review_code_changes(script, running_apps, target_apps):
    findings = []
    for module, mode in sorted(script.code_change.items()):
        # Up, the target's code converts the state; down, the running code does it before the load.
        apps = running_apps if mode == "down" else target_apps
        app, beam = _find(apps, module)
        if beam is None or "supervisor" in beam.behaviours:
            continue
        if not any(export in beam.exports for export in CODE_CHANGE_EXPORTS):
            findings.append(_finding(
                "update_without_code_change", app, module,
                "code_change {0}, but {1} exports no code_change/3".format(mode, _label(app, apps)),
                "The relup asks {0} of {1} to convert its processes' state ({2}) but that code exports "
                "no code_change/3 (code_change/4 for gen_statem), so its processes crash with undef past "
                "the point of no return; export code_change or use {{load_module, {0}}} in {3}.appup.".format(
                    module, _label(app, apps), mode, app)))
    return findings


def _find(apps, module):
    for app in sorted(apps):
        beam = _modules(apps, app).get(module)
        if beam is not None:
            return app, beam
    return None, None


def _procs_text(procs):
    return ", ".join(p["pid"] + (" ({0})".format(p["name"]) if p.get("name") else "") for p in procs)


def _review_node(script, running_apps, node):
    findings = []
    for module in sorted(node or {}):
        facts = node[module]
        app = _find(running_apps, module)[0]
        # Processes on old code die when a load or remove purges it first; processes in the module's
        # current code are left on old code by the load or remove and die in a later brutal purge, unless
        # the script suspends them first: a suspended process waits in its behaviour's loop, not in the module.
        doomed = []
        if script.replaces(module) or module in script.post_purged:
            doomed += facts.get("old_code_procs", [])
        if script.replaces(module) and module in script.post_purged and module not in script.suspended:
            doomed += [proc for proc in facts.get("procs", []) if proc not in doomed]
        if doomed:
            findings.append(_finding(
                "purge_kills", app, module, "purged while processes run its code: " + _procs_text(doomed),
                "Processes {0} run code of {1} that the relup purges, so the upgrade would kill them; "
                "stop them first, or make them leave that code (a fully qualified call) before "
                "upgrading.".format(_procs_text(doomed), module)))
        elif facts.get("old_code"):
            on_old = facts.get("old_code_procs")
            findings.append(_finding(
                "old_code_present", app, module,
                "old code loaded" + ("; on it: " + _procs_text(on_old) if on_old else ""),
                "Module {0} still has old code loaded from an earlier change; purge it with "
                "code:soft_purge({0}) once no process runs it, before upgrading.".format(module)))
    return findings


def review(instructions, running_apps, target_apps, node=None):
    """[finding] of one relup script (see the module doc for the shapes)."""
    script = _Script(instructions, running_apps, target_apps)
    return (_review_apps(script, running_apps, target_apps)
            + _review_code_changes(script, running_apps, target_apps)
            + _review_node(script, running_apps, node))


def purged_modules(instructions, running_apps, target_apps):
    """Sorted names of the modules whose code the script replaces or purges."""
    script = _Script(instructions, running_apps, target_apps)
    return sorted(str(module) for module in script.loaded | script.removed | script.post_purged)


def decide(findings, mode):
    """"refuse" (strict, findings), "warn" (warn, findings) or "ok"."""
    if mode not in MODES:
        raise ValueError("relup_review must be one of {0}, not {1!r}".format(", ".join(MODES), mode))
    if not findings or mode == "off":
        return "ok"
    return "refuse" if mode == "strict" else "warn"


# The node side. Variable names carry a prefix so that the expression can be batched with others.

def _module_list(modules):
    return format_term([Atom(module) for module in sorted(modules)])


def node_facts_expr(modules):
    """Erlang expression: for each module, {Mod, HasOldCode, ProcsOnOldCode, ProcsInItsCode}, a proc
    being {Pid, RegisteredName | []}. ProcsInItsCode: processes with a frame of the module on their
    stack now (they stay on that code when a new version is loaded)."""
    return (
        "(fun() ->"
        " ReviewName = fun(ReviewP) -> case erlang:process_info(ReviewP, registered_name) of"
        " {registered_name, ReviewN} -> {ReviewP, ReviewN}; _ -> {ReviewP, []} end end,"
        " ReviewProcs = erlang:processes(),"
        " ReviewStacks = [{ReviewP, ReviewS} || ReviewP <- ReviewProcs,"
        " {current_stacktrace, ReviewS} <- [erlang:process_info(ReviewP, current_stacktrace)]],"
        " [{ReviewM, erlang:check_old_code(ReviewM),"
        " [ReviewName(ReviewP) || erlang:check_old_code(ReviewM), ReviewP <- ReviewProcs,"
        " erlang:is_process_alive(ReviewP), erlang:check_process_code(ReviewP, ReviewM)],"
        " [ReviewName(ReviewP) || {ReviewP, ReviewS} <- ReviewStacks, ReviewP =/= self(),"
        " lists:keymember(ReviewM, 1, ReviewS)]}"
        " || ReviewM <- " + _module_list(modules) + "] end)()"
    )


def _proc(term):
    pid, name = term
    return {"pid": str(pid), "name": str(name) if is_atom(name) else None}


def parse_node_facts(term):
    """{module: {"old_code": bool, "old_code_procs": [proc], "procs": [proc]}}, proc = {"pid", "name"}."""
    return {
        str(module): {
            "old_code": old_code == "true",
            "old_code_procs": [_proc(p) for p in on_old],
            "procs": [_proc(p) for p in in_code],
        }
        for module, old_code, on_old, in_code in term
    }


def loaded_code_expr(modules):
    """Erlang expression: for each module, {Mod, code:which(Mod), Md5 | false} (false: not loaded)."""
    return (
        "[{ReviewM, code:which(ReviewM), case erlang:module_loaded(ReviewM) of"
        " true -> erlang:get_module_info(ReviewM, md5); false -> false end}"
        " || ReviewM <- " + _module_list(modules) + "]"
    )


def parse_loaded_code(term):
    """{module: {"path": str | None, "md5": hex str | None}}."""
    return {
        str(module): {
            "path": None if is_atom(path) or isinstance(path, Opaque) else str(path),
            "md5": bytes(md5).hex() if isinstance(md5, Binary) else None,
        }
        for module, path, md5 in term
    }


def expected_code(running_apps, target_apps):
    """{module: target md5, or None for a module the target no longer has} for every module whose
    code differs between the two releases."""
    expected = {}
    for app in set(running_apps) | set(target_apps):
        if app in running_apps and app in target_apps and \
                running_apps[app].get("vsn") == target_apps[app].get("vsn"):
            continue
        running, target = _modules(running_apps, app), _modules(target_apps, app)
        for module in set(running) | set(target):
            new = target.get(module)
            if new is None or running.get(module) is None or running[module].md5 != new.md5:
                expected[module] = new.md5 if new is not None else None
    return expected


def still_old(expected, loaded):
    """[finding of kind still_old_code] for modules whose loaded code is not what the target has."""
    findings = []
    for module in sorted(expected):
        want, have = expected[module], loaded.get(module, {}).get("md5")
        if want == have:
            continue
        detail = "loaded md5 {0}, target md5 {1}".format(have or "none", want or "none (module removed)")
        findings.append(_finding(
            "still_old_code", None, module, detail,
            "Module {0} does not run the target's code after the upgrade ({1}); the relup did not "
            "load it: fix the appup, or restart the node to run the new code.".format(module, detail)))
    return findings
