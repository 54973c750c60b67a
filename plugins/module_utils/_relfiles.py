# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files of a release as values: .rel, RELEASES, relup, start_erl.data and vm.args (text in, data out)."""

from __future__ import annotations

from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, ParseError, format_term, is_atom, parse_all
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._versions import version_key


def read_text(path):
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        return handle.read()


def read_terms(path):
    """file:consult/1 of a file, with the file named in the error."""
    try:
        return parse_all(read_text(path))
    except ParseError as exc:
        raise OtpReleaseError("%s cannot be read as Erlang terms: %s" % (path, exc))
    except OSError as exc:
        raise OtpReleaseError("%s cannot be read: %s" % (path, exc.strerror))


def parse_rel(text, source):
    """(name, vsn, erts vsn, [(app, vsn)]) from the text of a .rel file; `source` names it in errors."""
    try:
        terms = parse_all(text)
    except ParseError as exc:
        raise OtpReleaseError("{0} is not a valid .rel file: {1}".format(source, exc))
    shape_error = OtpReleaseError(
        "{0} is not a release file: expected {{release, {{Name, Vsn}}, {{erts, ErtsVsn}}, [{{App, AppVsn}}, ...]}}.".format(source)
    )
    if len(terms) != 1 or not isinstance(terms[0], tuple) or len(terms[0]) != 4 or not is_atom(terms[0][0], "release"):
        raise shape_error
    _tag, name_vsn, erts, apps = terms[0]
    if not (isinstance(name_vsn, tuple) and len(name_vsn) == 2 and all(isinstance(x, str) for x in name_vsn)):
        raise shape_error
    if not (isinstance(erts, tuple) and len(erts) == 2 and is_atom(erts[0], "erts") and isinstance(erts[1], str)):
        raise shape_error
    if not isinstance(apps, list) or not all(isinstance(app, tuple) and 2 <= len(app) <= 4 for app in apps):
        raise shape_error
    return str(name_vsn[0]), str(name_vsn[1]), str(erts[1]), [(str(app[0]), str(app[1])) for app in apps]


def parse_releases(terms):
    """Entries of a RELEASES file's terms: [{name, version, erts, state, libs: [(app, vsn, lib dir as written)]}]."""
    entries = []
    for release in (terms[0] if terms else []):
        libs = [(str(lib[0]), str(lib[1]), str(lib[2])) for lib in release[4]]
        entries.append(dict(name=str(release[1]), version=str(release[2]), erts=str(release[3]), state=str(release[5]),
                            libs=libs))
    return entries


def releases_file_text(entries):
    """RELEASES as release_handler writes it, for entries {name, version, erts, libs: [(app, vsn, lib dir)], state}."""
    terms = [(Atom("release"), e["name"], e["version"], e["erts"], [(Atom(app), vsn, lib_dir) for app, vsn, lib_dir in e["libs"]],
              Atom(e["state"])) for e in entries]
    return "%% coding: utf-8\n" + format_term(terms) + ".\n"


def rel_text(name, version, erts, applications):
    """A .rel file for a release and its [(app, vsn)]."""
    term = (Atom("release"), (name, version), (Atom("erts"), erts), [(Atom(app), vsn) for app, vsn in applications])
    return "%% coding: utf-8\n" + format_term(term) + ".\n"


def rel_libs(applications):
    """[(app, vsn, lib dir)] of a .rel's [(app, vsn)], with the lib dirs relative to the root."""
    return [(app, vsn, "lib/%s-%s" % (app, vsn)) for app, vsn in applications]


def releases_text(name, version, erts, applications, state="permanent"):
    """RELEASES as release_handler writes it, for one version and its [(app, vsn)]."""
    return releases_file_text([dict(name=name, version=version, erts=erts, libs=rel_libs(applications), state=state)])


def parse_start_erl_data(text):
    """(erts, version) of a start_erl.data text, or None."""
    fields = text.split()
    return (fields[0], fields[1]) if len(fields) == 2 else None


def vm_args_options(text, read_included):
    """Options of a vm.args text as [(flag, value)]; -args_file is followed through read_included(path) -> [...]."""
    options = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("-"):
            continue
        flag, value = (line.split(None, 1) + [""])[:2]
        value = value.strip()
        if flag == "-args_file":
            options.extend(read_included(value))
        else:
            options.append((flag, value))
    return options


class Relup(object):
    """A relup file: {Vsn, [{UpFrom, Descr, Instructions}], [{DownTo, Descr, Instructions}]}."""

    def __init__(self, version, up, down):
        self.version = version
        self.up = up  # {from version: instructions}
        self.down = down  # {to version: instructions}

    @classmethod
    def from_text(cls, text, source, version=None):
        """Parse and check a relup; version, when given, must be the relup's own."""
        try:
            terms = parse_all(text)
        except ParseError as exc:
            raise OtpReleaseError("{0} is not a valid relup file: {1}".format(source, exc))
        term = terms[0] if len(terms) == 1 else None
        if not (isinstance(term, tuple) and len(term) == 3 and isinstance(term[1], list) and isinstance(term[2], list)
                and all(isinstance(step, tuple) and len(step) == 3 for step in term[1] + term[2])):
            raise OtpReleaseError(
                "{0} is not a relup: expected {{Vsn, [{{UpFromVsn, Descr, Instructions}}], "
                "[{{DownToVsn, Descr, Instructions}}]}}.".format(source))
        if version is not None and term[0] != version:
            raise OtpReleaseError(
                "{0} is the relup of version {1!r}, not of {2!r}: rebuild the relup for this release.".format(source, term[0], version))
        return cls(str(term[0]), dict((str(s[0]), s[2]) for s in term[1]), dict((str(s[0]), s[2]) for s in term[2]))

    def up_from(self):
        return sorted(self.up, key=version_key)

    def down_to(self):
        return sorted(self.down, key=version_key)

    def path(self, from_version, to_version):
        """The instructions that take a node from from_version to to_version, or None. This relup is the
        target's when going up and the running version's when going down (see relup_owner)."""
        if version_key(to_version) >= version_key(from_version):
            return self.up.get(from_version)
        return self.down.get(to_version)


def relup_owner(from_version, to_version):
    """Whose relup holds the path: the new version's for an upgrade, the running one's for a downgrade."""
    return to_version if version_key(to_version) >= version_key(from_version) else from_version


def restart_kind(instructions):
    """'new_emulator' (restart_new_emulator, normally first), 'emulator' (restart_emulator, normally last) or
    'none', for the instruction list of one relup entry."""
    instructions = instructions or []
    if any(is_atom(item, "restart_new_emulator") for item in instructions):
        return "new_emulator"
    if any(is_atom(item, "restart_emulator") for item in instructions):
        return "emulator"
    return "none"


def instruction_summary(instructions):
    """Counts of relup instructions by kind, e.g. {'load': 3, 'suspend': 1, 'code_change': 1}."""
    counts = {}
    for instruction in instructions or []:
        kind = str(instruction[0]) if isinstance(instruction, tuple) else str(instruction)
        counts[kind] = counts.get(kind, 0) + 1
    return counts
