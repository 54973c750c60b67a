# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one error family of module_utils, and the sentences for release_handler's error terms."""

from __future__ import annotations

from ansible_collections.otp.release.plugins.module_utils._erlterm import format_term, to_plain


class OtpReleaseError(Exception):
    """A refused or failed step. msg says what is wrong, where, the state now and what to do; raw is the Erlang
    term behind it (release_handler_error in the result); fields are merged into the failed result."""

    def __init__(self, msg, raw=None, **fields):
        super(OtpReleaseError, self).__init__(msg)
        self.msg = msg
        self.raw = raw
        self.fields = fields


class NodeError(OtpReleaseError):
    """A call to the node failed. kind: not_running, not_registered, bad_cookie, timeout, no_channel, call."""

    def __init__(self, kind, msg, raw=None):
        super(NodeError, self).__init__(msg, raw=raw)
        self.kind = kind


class NodeException(NodeError):
    """The expression raised on the node: class, reason and stack as Erlang terms."""

    def __init__(self, msg, error_class, reason, stack):
        super(NodeException, self).__init__("call", msg, raw=reason)
        self.error_class = error_class
        self.reason = reason
        self.stack = stack


NODE_DOWN = ("not_running", "not_registered")

_TEXTS = {
    "no_such_release": "release_handler does not know version %s: unpack it first",
    "already_installed": "version %s is already installed",
    "enoent": "a file is missing: %s",
    "no_matching_relup": "the relup has no path to %s from %s",
    "bad_relup_file": "the relup file %s cannot be read",
    "existing_release": "version %s is already unpacked",
    "no_such_directory": "the directory %s is missing",
    "bad_rel_file": "the .rel file %s cannot be read",
}


def show_term(term):
    """Erlang text of a term from the node; pids and other opaque values as the node printed them."""
    try:
        return format_term(term)
    except TypeError:
        return str(to_plain(term))


def crash_reason(error):
    """{'EXIT', {Reason, Stack}} -> Reason: the stack says little to an operator and hides the reason."""
    if isinstance(error, tuple) and len(error) == 2 and error[0] == "EXIT":
        error = error[1]
        if isinstance(error, tuple) and len(error) == 2 and isinstance(error[1], list):
            error = error[0]
    return error


def explain(reason):
    """One sentence for a release_handler error term."""
    if isinstance(reason, tuple) and len(reason) == 5 and reason[0] == "code_change_failed":
        _kind, process, module, version, error = reason
        return "code_change of module %s (version %s) crashed in process %s: %s" % (
            module, version, process, show_term(crash_reason(error)))
    plain = to_plain(reason)
    kind = plain[0] if isinstance(plain, list) and plain else plain
    if isinstance(kind, str) and kind in _TEXTS and isinstance(plain, list):
        template = _TEXTS[kind]
        needed = template.count("%s")
        args = (plain[1:] + [""] * needed)[:needed]
        return template % tuple(format_term(a) if not isinstance(a, str) else a for a in args)
    return "release_handler returned %s" % show_term(reason)


def _is_stack(term):
    return isinstance(term, list) and bool(term) and all(isinstance(f, tuple) and len(f) == 4 for f in term)


def explain_unpack(reason):
    """One sentence for an unpack_release error term."""
    plain = to_plain(reason)
    if isinstance(plain, list) and len(plain) == 3 and plain[0] == "cannot_extract_file":
        return "it could not write %s (%s)" % (plain[1], format_term(reason[2]))
    if isinstance(reason, tuple) and len(reason) == 2 and _is_stack(reason[1]):
        # release_handler caught a crash, e.g. {case_clause, {error, eperm}} when erl_tar cannot write a file
        module, function, arity = reason[1][0][:3]
        return "release_handler crashed with %s in %s:%s/%s" % (format_term(reason[0]), module, function, arity)
    if isinstance(plain, list) and plain and not isinstance(plain[0], str):
        return "release_handler returned %s" % format_term(reason)
    return explain(reason)


def failure_fields(exc):
    """The fields of a failed result for an OtpReleaseError (msg apart)."""
    fields = dict(exc.fields)
    if exc.raw is not None:
        fields["release_handler_error"] = to_plain(exc.raw)
    return fields
