# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run Module:Function(Args) with the code of one unpacked version, in a one-off VM of its own.

The VM boots the version's bundled ERTS with the version's boot file and sys.config, puts the lib
directories of every application of the version (.rel or RELEASES) first in the code path, loads those
applications (starts only the ones asked for), calls the function in a monitored process and writes
the outcome to a file in a private temporary directory. It never starts distribution, so it cannot
clash with the running node or reach it.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time

from ansible_collections.otp.release.plugins.module_utils._erlterm import (
    Atom, ParseError, format_term, is_atom, parse, to_plain)
from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._proc import erlexec_command, run_command
from ansible_collections.otp.release.plugins.module_utils._versions import current_version, version_key

RESULT_FILE = "result.term"
PROGRAM_FILE = "program.erl"
TAGGED_VALUES = ("atom", "tuple", "binary", "charlist")
DEFAULT_MAX_OUTPUT = 1 << 20
# ~0p prints a byte of a binary as up to 4 characters, and the outcome holds up to 3 texts (result or reason, stack)
RESULT_FILE_FACTOR = 12
# What ERTS loads before any boot file (erlang:pre_loaded/0 of OTP 25): no application's ebin holds their .beam.
PRELOADED = frozenset((
    "atomics", "counters", "erl_init", "erl_prim_loader", "erl_tracer", "erlang", "erts_code_purger",
    "erts_dirty_process_signal_handler", "erts_internal", "erts_literal_area_collector", "init", "persistent_term",
    "prim_buffer", "prim_eval", "prim_file", "prim_inet", "prim_net", "prim_socket", "prim_zip", "socket_registry", "zlib"))


def erlang_value(value, strings_as="binary"):
    """A YAML value as the Python value format_term writes as the Erlang term the caller means.

    Strings become binaries or charlists (strings_as); a mapping with the single key atom, tuple,
    binary or charlist makes that kind of term; other mappings become maps; None is undefined."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in TAGGED_VALUES:
        kind, inner = next(iter(value.items()))
        if kind == "tuple":
            if not isinstance(inner, list):
                raise OtpReleaseError("{tuple: ...} takes a list of the tuple's elements, not %r." % (inner,))
            return tuple(erlang_value(item, strings_as) for item in inner)
        if not isinstance(inner, str):
            raise OtpReleaseError("{%s: ...} takes a string, not %r." % (kind, inner))
        if kind == "atom":
            return Atom(inner)
        return erlang_value(inner, kind)
    if isinstance(value, str):
        return value.encode("utf-8") if strings_as == "binary" else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise OtpReleaseError("%r is not an Erlang number: Erlang floats have no NaN or infinity (YAML .nan, .inf). Pass a "
                              "finite number, or an atom ({atom: infinity})." % (value,))
    if isinstance(value, (list, tuple)):
        return [erlang_value(item, strings_as) for item in value]
    if isinstance(value, dict):
        return dict((erlang_value(key, strings_as), erlang_value(item, strings_as)) for key, item in value.items())
    return value


def mfa_text(module, function, args):
    """kv_migrate:run() as an operator would write it."""
    return "%s:%s(%s)" % (format_term(Atom(module)), format_term(Atom(function)), ", ".join(format_term(a) for a in args))


# The program the VM runs with file:script/1. Every value in it is written by format_term, so the text
# is ASCII. The outcome file holds one term printed with ~0p (one byte per character, so it is read as
# latin-1); every user term inside it is a UTF-8 binary of its own ~0tp text, so any atom, string or
# pid the function returns reaches Python intact.
PROGRAM = """\
BootMs = element(1, erlang:statistics(wall_clock)),
io:setopts(standard_io, [{encoding, unicode}]),
erlang:system_flag(backtrace_depth, 40),
Text = fun(Term) ->
         Bin = unicode:characters_to_binary(io_lib:format("~0tp", [Term])),
         case byte_size(Bin) > %(max_output)d of
           true -> {cut, binary:part(Bin, 0, %(max_output)d), byte_size(Bin)};
           false -> Bin
         end
       end,
Dirs = %(dirs)s,
Outcome =
  case code:set_path(Dirs ++ [D || D <- code:get_path(), not lists:member(D, Dirs), D =/= "."]) of
    true ->
      case [{App, Why} || App <- %(apps)s, {error, Why} <- [application:load(App)],
                          not (is_tuple(Why) andalso element(1, Why) =:= already_loaded)] of
        [{BadApp, LoadWhy} | _] -> {load_failed, BadApp, Text(LoadWhy)};
        [] ->
          case [{App, Why} || App <- %(start_apps)s, {error, Why} <- [application:ensure_all_started(App)]] of
            [{BadApp, StartWhy} | _] -> {start_failed, BadApp, Text(StartWhy)};
            [] ->
              case code:ensure_loaded(%(module)s) of
                {error, NoModule} -> {no_module, NoModule};
                {module, _} ->
                  case erlang:function_exported(%(module)s, %(function)s, %(arity)d) of
                    false -> {no_function, lists:sort([A || {F, A} <- %(module)s:module_info(exports), F =:= %(function)s])};
                    true ->
                      Started = erlang:monotonic_time(millisecond),
                      {Pid, Ref} = spawn_monitor(fun() ->
                          exit({otprel_done, try {ok, erlang:apply(%(module)s, %(function)s, %(args)s)}
                                             catch Class:Reason:Stack -> {exception, Class, Reason, Stack} end})
                        end),
                      Done = receive {'DOWN', Ref, process, Pid, Exit} -> Exit end,
                      CallMs = erlang:monotonic_time(millisecond) - Started,
                      case Done of
                        {otprel_done, {ok, Result}} -> {ok, CallMs, Text(Result)};
                        {otprel_done, {exception, C, R, S}} -> {exception, CallMs, C, Text(R), Text(S)};
                        Killed -> {exception, CallMs, exit, Text(Killed), Text([])}
                      end
                  end
              end
          end
      end;
    PathError -> {path_failed, Text(PathError)}
  end,
ok = file:write_file(%(result_file)s, io_lib:format("~0p.~n", [{otprel_eval, BootMs, Outcome}])).
"""

LOADER = "case file:script(%s) of {ok, _} -> halt(0); {error, Why} -> io:format(standard_error, \"~p~n\", [Why]), halt(3) end."


def program(module, function, args, lib_dirs, apps, start_apps, result_file, max_output=DEFAULT_MAX_OUTPUT):
    return PROGRAM % dict(
        max_output=max_output, dirs=format_term(list(lib_dirs)), apps=format_term([Atom(a) for a in apps]),
        start_apps=format_term([Atom(a) for a in start_apps]), module=format_term(Atom(module)),
        function=format_term(Atom(function)), arity=len(args), args=format_term(list(args)),
        result_file=format_term(result_file))


def version_libs(release, version):
    """(erts, [(app, lib dir)]) of an unpacked version, in .rel order."""
    contents = release.version_contents(version)
    if contents is None:
        known = ", ".join(sorted(set(e["version"] for e in release.releases_file()), key=version_key))
        raise OtpReleaseError("Version %s of %s is not unpacked in %s (versions there: %s): unpack it first with otp.release.unpack."
                              % (version, release.name, release.root, known or "none"))
    erts, libs = contents
    return erts, [(app, lib_dir) for app, _vsn, lib_dir in libs]


class VersionLayout(object):
    """The files of one unpacked version that the one-off VM needs; raises OtpReleaseError naming what is missing."""

    def __init__(self, release, version):
        self.release = release
        self.version = version
        erts, libs = version_libs(release, version)
        self.apps = [lib[0] for lib in libs]
        self.lib_dirs = [os.path.join(lib[1], "ebin") for lib in libs]
        self.erts_bin = release.erts_bin(erts)
        boot_dir = release.path("releases", version)
        # relx ships no_dot_erlang.boot: start_clean without the step that runs the user's ~/.erlang.
        boot_name = "no_dot_erlang" if os.path.isfile(os.path.join(boot_dir, "no_dot_erlang.boot")) else "start_clean"
        self.boot = os.path.join(boot_dir, boot_name)
        sys_config = os.path.join(boot_dir, "sys.config")
        self.sys_config = sys_config if os.path.isfile(sys_config) else None
        self.warnings = []
        if not self.sys_config and os.path.isfile(sys_config + ".src"):
            self.warnings.append("%s.src is not rendered for the one-off VM, so it runs without a sys.config: render it "
                                 "to %s first if the function needs its settings." % (sys_config, sys_config))
        erlexec = os.path.join(self.erts_bin, "erlexec")
        if not os.access(erlexec, os.X_OK):
            raise OtpReleaseError("%s is missing: version %s must bundle its ERTS %s (include_erts) to run in a one-off VM."
                                  % (erlexec, version, erts))
        if not os.path.isfile(self.boot + ".boot"):
            raise OtpReleaseError("%s.boot is missing: version %s of %s is incomplete; unpack it again." % (self.boot, version, release.root))
        missing = [d for d in self.lib_dirs if not os.path.isdir(d)]
        if missing:
            raise OtpReleaseError("Version %s of %s is incomplete, %s is missing: unpack it again." % (version, release.root, missing[0]))

    def has_module(self, module):
        return module in PRELOADED or any(os.path.isfile(os.path.join(d, "%s.beam" % module)) for d in self.lib_dirs)

    def command(self, program_file, work_dir):
        """argv and environment of the one-off VM: no -name/-sname, so no distribution starts."""
        args = ["-config", self.sys_config] if self.sys_config else []
        return erlexec_command(self.erts_bin, self.boot, self.release.boot_vars(), args + ["-eval", LOADER % format_term(program_file)],
                               dict(ERL_CRASH_DUMP=os.path.join(work_dir, "erl_crash.dump")))


def read_outcome(text):
    """The result file's term -> (boot_ms, outcome tuple). Raises OtpReleaseError when it is not ours."""
    try:
        term = parse(text)
    except ParseError as exc:
        raise OtpReleaseError("The one-off VM wrote a result that cannot be read (%s): %s" % (exc, text[:500]))
    if not (isinstance(term, tuple) and len(term) == 3 and is_atom(term[0], "otprel_eval")):
        raise OtpReleaseError("The one-off VM wrote an unexpected result: %s" % text[:500])
    return term[1], term[2]


def is_cut(text_binary):
    """The VM sent {cut, First bytes, Size}: the text was longer than max_output."""
    return isinstance(text_binary, tuple)


def term_of(text_binary):
    """(term, text) of a ~0tp text the VM sent as a binary; the term is the text itself when it cannot be read back
    (or was cut, see is_cut)."""
    if is_cut(text_binary):
        text = text_binary[1].decode("utf-8", "replace")
        return text, "%s ... (cut: %d bytes in all)" % (text, text_binary[2])
    text = text_binary.decode("utf-8", "replace")
    try:
        return parse(text), text
    except ParseError:
        return text, text


def format_stack(stack):
    """An Erlang stacktrace as lines of 'module:function/arity (file:line)', without the frames of the
    interpreter (erl_eval) that ran our program below the function."""
    if not isinstance(stack, list):
        return str(stack)
    stack = list(stack)
    while stack and isinstance(stack[-1], tuple) and is_atom(stack[-1][0], "erl_eval"):
        stack.pop()
    lines = []
    for frame in stack:
        if not (isinstance(frame, tuple) and len(frame) == 4):
            lines.append(format_term(frame) if not isinstance(frame, str) else frame)
            continue
        module, function, arity, location = frame
        arity = len(arity) if isinstance(arity, list) else arity
        where = dict((str(item[0]), item[1]) for item in location if isinstance(item, tuple) and len(item) == 2)
        line = "%s:%s/%s" % (module, function, arity)
        if "file" in where:
            line += " (%s%s)" % (where["file"], ":%s" % where["line"] if "line" in where else "")
        lines.append(line)
    return "\n".join(lines)


def failed_by_tag(result, tags):
    """True when the result is one of the atoms in tags, or a tuple whose first element is one."""
    head = result[0] if isinstance(result, tuple) and result else result
    return is_atom(head) and str(head) in tags


def shorten(text, limit=600):
    return text if len(text) <= limit else text[:limit] + " ..."


def interpret(outcome, where, name, tags):
    """The outcome term -> the result fields; raises OtpReleaseError for every outcome that is a failure.

    where: "version V of ROOT"; name: module:function/arity."""
    kind = str(outcome[0])
    if kind == "ok":
        result, text = term_of(outcome[2])
        fields = dict(result=to_plain(result), result_text=text, call_ms=outcome[1])
        if is_cut(outcome[2]):
            fields.update(result=None, truncated=True, warnings=[
                "The result of %s is %d bytes as text; result_text holds its first %d (max_output) and result is null."
                % (name, outcome[2][2], len(outcome[2][1]))])
        if failed_by_tag(result, tags):
            raise OtpReleaseError("%s returned %s (%s), a failure by failed_when_result." % (name, shorten(text), where), **fields)
        return fields
    if kind == "exception":
        call_ms, error_class, reason_text, stack_text = outcome[1:]
        reason_text = term_of(reason_text)[1]
        raise OtpReleaseError("%s raised %s:%s (%s)." % (name, error_class, shorten(reason_text), where),
                              erlang_class=str(error_class), erlang_reason=reason_text,
                              erlang_stack=format_stack(term_of(stack_text)[0]), call_ms=call_ms)
    module, function = name.rsplit("/", 1)[0].split(":", 1)
    if kind == "no_module":
        raise OtpReleaseError("Module %s is not in %s (%s): check the module name, or pass the version that ships it."
                              % (module, where, outcome[1]))
    if kind == "no_function":
        exported = ", ".join("%s/%s" % (function, arity) for arity in outcome[1]) or "none of that name"
        raise OtpReleaseError("%s is not exported in %s (exported: %s): check function and args." % (name, where, exported))
    if kind in ("load_failed", "start_failed"):
        raise OtpReleaseError("Application %s of %s could not be %s in the one-off VM: %s." % (
            outcome[1], where, "loaded" if kind == "load_failed" else "started", shorten(term_of(outcome[2])[1])))
    raise OtpReleaseError("The one-off VM could not set the code path of %s: %s." % (where, shorten(term_of(outcome[1])[1])))


def run_eval(release, version, module, function, args=(), start_apps=(), strings_as="binary",
             failed_when_result=("error",), timeout=60, check_mode=False, runner=run_command, max_output=DEFAULT_MAX_OUTPUT):
    """Evaluate module:function(args) with the code of version (default: the running one) in a one-off VM.

    Returns the result fields; raises OtpReleaseError (its details hold stdout, stack, ...) on any failure."""
    started = time.monotonic()
    if max_output < 1024:
        raise OtpReleaseError("max_output is %s: give at least 1024 (bytes)." % max_output)
    if not version:
        version = current_version(release.release_states())
        if not version:
            raise OtpReleaseError("No version given and %s names no current or permanent release: pass version." % release.root)
    layout = VersionLayout(release, version)
    erlang_args = [erlang_value(a, strings_as) for a in args]
    call = mfa_text(module, function, erlang_args)
    fields = dict(version=version, call=call, warnings=list(layout.warnings))
    if check_mode:
        if not layout.has_module(module):
            raise OtpReleaseError("Module %s is not in the applications of version %s of %s (no %s.beam in %s)."
                                  % (module, version, release.root, module, ", ".join(layout.lib_dirs)))
        return dict(fields, changed=False, skipped=True, skipped_in_check_mode=True,
                    msg="%s would run with version %s; not run in check mode." % (call, version))
    work_dir = tempfile.mkdtemp(prefix="otp-release-eval-")
    try:
        os.chmod(work_dir, 0o700)
        program_file = os.path.join(work_dir, PROGRAM_FILE)
        result_file = os.path.join(work_dir, RESULT_FILE)
        with open(program_file, "w") as handle:
            handle.write(program(module, function, erlang_args, layout.lib_dirs, layout.apps, start_apps, result_file, max_output))
        argv, env = layout.command(program_file, work_dir)
        try:
            rc, out, err = runner(argv, env=env, timeout=timeout, max_output=max_output)
        except NodeError as exc:
            if exc.kind != "timeout":
                raise
            raise OtpReleaseError("%s did not finish within %s s: the one-off VM of version %s was killed. Raise timeout if it "
                                  "needs longer; check what the function left half done." % (call, timeout, version), **fields)
        fields.update(stdout=out, duration_ms=int((time.monotonic() - started) * 1000))
        if getattr(out, "cut_bytes", 0):
            fields["truncated"] = True
            fields["warnings"].append("The one-off VM printed %d bytes; stdout holds the first %d (max_output)."
                                      % (len(out.encode()) + out.cut_bytes, max_output))
        if not os.path.isfile(result_file):
            raise OtpReleaseError("The one-off VM of version %s exited with code %s before %s returned (did the function halt "
                                  "the VM?): %s" % (version, rc, call, shorten((err + out).strip(), 1500)), stderr=err, rc=rc, **fields)
        # ~p writes every character of the outer term as one byte
        with open(result_file, encoding="latin-1") as handle:
            boot_ms, outcome = read_outcome(handle.read(RESULT_FILE_FACTOR * max_output + RESULT_FILE_FACTOR * 4096))
        fields["boot_ms"] = boot_ms
        try:
            where = "version %s of %s" % (version, release.root)
            name = "%s:%s/%d" % (format_term(Atom(module)), format_term(Atom(function)), len(erlang_args))
            answer = interpret(outcome, where, name, failed_when_result)
            fields["warnings"] += answer.pop("warnings", [])
            fields.update(answer)
        except OtpReleaseError as exc:
            exc.fields = dict(fields, **exc.fields)
            raise
        return dict(fields, changed=True)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
