# -*- coding: utf-8 -*-
# Copyright (c) 2026, otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ERTS checks: will the ERTS bundled with a release version start and load its NIFs on this host?

release_handler never looks at `erts-*`, so these checks are ours. Each returns
{"check": <id>, "ok": bool, "detail": <one sentence>}. ELF files are parsed here (32/64-bit, both byte
orders); nothing from the release is executed (no ldd).
"""

from __future__ import annotations

import glob
import mmap
import os
import re
import shutil
import struct
import sys
import tempfile
from collections import namedtuple

from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._proc import run_command
from ansible_collections.otp.release.plugins.module_utils._relfiles import parse_rel
from ansible_collections.otp.release.plugins.module_utils._tarball import INCLUDE_ERTS_HINT, extract_members, inspect

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 1, 5, 15, 29
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
VER_FLG_BASE = 1

MACHINES = {
    3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 43: "sparc64",
    62: "x86_64", 183: "aarch64", 243: "riscv", 258: "loongarch",
}
MULTIARCH = {
    "x86_64": ["x86_64-linux-gnu"], "i386": ["i386-linux-gnu"], "aarch64": ["aarch64-linux-gnu"],
    "arm": ["arm-linux-gnueabihf", "arm-linux-gnueabi"], "riscv64": ["riscv64-linux-gnu"],
    "ppc64le": ["powerpc64le-linux-gnu"], "ppc64": ["powerpc64-linux-gnu"], "s390x": ["s390x-linux-gnu"],
    "mips64el": ["mips64el-linux-gnuabi64"], "loongarch64": ["loongarch64-linux-gnu"],
}
LD_SO_CACHE = "/etc/ld.so.cache"
LD_SO_CACHE_MAGIC = b"glibc-ld.so.cache1.1"
LDCONFIG = ("/sbin/ldconfig", "/usr/sbin/ldconfig")
EMULATOR_VERSION = re.compile(rb"emulator version (\d+(?:\.\d+)+)")
ERL_CALL_IN_ERTS = (11,)  # erl_call lives in erts-*/bin since OTP 23 (ERTS 11)

ElfFile = namedtuple(
    "ElfFile", "path bits endian machine interp needed rpath runpath version_needs version_defs"
)
ElfFile.__doc__ = """What we need of an ELF file: bits 32|64, endian little|big, machine (e_machine),
interp (PT_INTERP or None), needed/rpath/runpath lists, version_needs {soname: [version]},
version_defs (set of versions the file defines)."""


def _result(check, ok, detail):
    return {"check": check, "ok": bool(ok), "detail": detail}


def _version_tuple(text):
    return tuple(int(part) for part in re.findall(r"\d+", text))


# ---- ELF -------------------------------------------------------------------------------------------

def read_elf(path):
    """Parse the ELF file at `path` (symlinks followed). Raises OtpReleaseError if it is not one."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size < 52:
                raise OtpReleaseError("{0} is not an ELF file (too short).".format(path))
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _parse_elf(path, data)
    except OSError as exc:
        raise OtpReleaseError("Cannot read {0}: {1}".format(path, exc.strerror or exc))
    except (struct.error, ValueError, IndexError) as exc:
        raise OtpReleaseError("{0} is a damaged ELF file ({1}).".format(path, exc))


def _parse_elf(path, data):
    if data[:4] != b"\x7fELF":
        raise OtpReleaseError("{0} is not an ELF file.".format(path))
    bits = {1: 32, 2: 64}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if bits is None or order is None:
        raise OtpReleaseError("{0} has an unknown ELF class or byte order.".format(path))
    (machine,) = struct.unpack_from(order + "H", data, 18)
    if bits == 64:
        (phoff,) = struct.unpack_from(order + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
        dynamic_entry = order + "qQ"
    else:
        (phoff,) = struct.unpack_from(order + "I", data, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 42)
        dynamic_entry = order + "iI"

    segments = []  # (type, file offset, virtual address, size in file)
    for index in range(phnum):
        position = phoff + index * phentsize
        if bits == 64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(order + "IIQQQQ", data, position)
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(order + "IIIII", data, position)
        segments.append((p_type, p_offset, p_vaddr, p_filesz))

    def file_offset(address):
        for p_type, p_offset, p_vaddr, p_filesz in segments:
            if p_type == PT_LOAD and p_vaddr <= address < p_vaddr + p_filesz:
                return address - p_vaddr + p_offset
        raise ValueError("address {0:#x} is outside the file".format(address))

    def text_at(offset):
        end = data.find(b"\0", offset)
        if end < 0:
            raise ValueError("unterminated string at {0:#x}".format(offset))
        return data[offset:end].decode("utf-8", "surrogateescape")

    interp = None
    entries = []  # (tag, value) of the dynamic section
    for p_type, p_offset, _vaddr, p_filesz in segments:
        if p_type == PT_INTERP:
            interp = data[p_offset:p_offset + p_filesz].split(b"\0")[0].decode("utf-8", "surrogateescape")
        elif p_type == PT_DYNAMIC and not entries:
            size = struct.calcsize(dynamic_entry)
            for position in range(p_offset, p_offset + p_filesz - size + 1, size):
                tag, value = struct.unpack_from(dynamic_entry, data, position)
                if tag == 0:
                    break
                entries.append((tag, value))

    first = {}
    for tag, value in entries:
        first.setdefault(tag, value)
    strtab = file_offset(first[DT_STRTAB]) if DT_STRTAB in first else None

    def string(index):
        if strtab is None:
            raise ValueError("dynamic section without a string table")
        return text_at(strtab + index)

    def paths(tag):
        return [part for tag_, value in entries if tag_ == tag for part in string(value).split(":") if part]

    version_needs = {}
    position = file_offset(first[DT_VERNEED]) if DT_VERNEED in first else None
    for _index in range(first.get(DT_VERNEEDNUM, 0) if position is not None else 0):
        _version, count, file_name, aux, next_need = struct.unpack_from(order + "HHIII", data, position)
        names = version_needs.setdefault(string(file_name), [])
        aux_position = position + aux
        for _aux_index in range(count):
            _hash, _flags, _other, name, next_aux = struct.unpack_from(order + "IHHII", data, aux_position)
            names.append(string(name))
            if not next_aux:
                break
            aux_position += next_aux
        if not next_need:
            break
        position += next_need

    version_defs = set()
    position = file_offset(first[DT_VERDEF]) if DT_VERDEF in first else None
    for _index in range(first.get(DT_VERDEFNUM, 0) if position is not None else 0):
        _version, flags, _ndx, count, _hash, aux, next_def = struct.unpack_from(order + "HHHHIII", data, position)
        if count and not flags & VER_FLG_BASE:
            (name,) = struct.unpack_from(order + "I", data, position + aux)
            version_defs.add(string(name))
        if not next_def:
            break
        position += next_def

    return ElfFile(
        path=path,
        bits=bits,
        endian="little" if order == "<" else "big",
        machine=machine,
        interp=interp,
        needed=[string(value) for tag, value in entries if tag == DT_NEEDED],
        rpath=paths(DT_RPATH),
        runpath=paths(DT_RUNPATH),
        version_needs=version_needs,
        version_defs=version_defs,
    )


def machine_name(elf):
    """The machine in words: x86_64, aarch64, arm, i386, riscv64, ppc64le, s390x, ..."""
    name = MACHINES.get(elf.machine, "ELF machine {0}".format(elf.machine))
    if elf.machine in (243, 258):
        name += str(elf.bits)
    elif elf.machine == 21 and elf.endian == "little":
        name = "ppc64le"
    elif elf.machine == 22 and elf.bits == 64:
        name = "s390x"
    elif elf.machine == 8:
        name = ("mips64" if elf.bits == 64 else "mips") + ("el" if elf.endian == "little" else "")
    return name


def describe_arch(elf):
    return "{0} ({1}-bit, {2}-endian)".format(machine_name(elf), elf.bits, elf.endian)


def same_arch(one, other):
    return (one.bits, one.endian, one.machine) == (other.bits, other.endian, other.machine)


def host_elf():
    """The ELF of the Python running this code: it tells this host's machine and C library."""
    candidates = [os.path.realpath(sys.executable)] if sys.executable else []
    for candidate in candidates + ["/proc/self/exe"]:
        try:
            return read_elf(candidate)
        except OtpReleaseError:
            continue
    raise OtpReleaseError("Cannot read this host's own executable ({0}) to learn its machine type.".format(
        ", ".join(candidates + ["/proc/self/exe"])))


def libc_kind(elf):
    """'glibc', 'musl', 'none' (static) or 'unknown', from the program interpreter."""
    if not elf.interp:
        return "none"
    base = os.path.basename(elf.interp)
    if base.startswith("ld-musl"):
        return "musl"
    if base.startswith(("ld-linux", "ld64.so", "ld.so")):
        return "glibc"
    return "unknown"


def _glibc_needed(elf):
    """Highest GLIBC_x.y symbol version the file needs, as a tuple, or None."""
    versions = [
        _version_tuple(name) for names in elf.version_needs.values() for name in names
        if re.match(r"GLIBC_\d+(\.\d+)*$", name)
    ]
    return max(versions) if versions else None


def _host_glibc():
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):
        return None
    return _version_tuple(text) or None


# ---- where the loader would find libraries ----------------------------------------------------------

def _text_at(data, offset):
    return data[offset:data.index(b"\0", offset)].decode("utf-8", "surrogateescape")


def read_ld_so_cache(path=LD_SO_CACHE):
    """{soname: [paths]} from glibc's loader cache ("glibc-ld.so.cache1.1"), None if unusable."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    start = data.find(LD_SO_CACHE_MAGIC)  # an old-format cache carries the new one after its entries
    if start < 0:
        return None
    libraries = {}
    try:
        (count,) = struct.unpack_from("=I", data, start + len(LD_SO_CACHE_MAGIC))
        for index in range(count):
            _flags, key, value, _os_version, _hwcap = struct.unpack_from("=iIIIQ", data, start + 48 + 24 * index)
            libraries.setdefault(_text_at(data, start + key), []).append(_text_at(data, start + value))
    except (struct.error, ValueError):
        return None
    return libraries


def read_ldconfig_output():
    """{soname: [paths]} from `ldconfig -p`, for hosts whose cache file we cannot parse."""
    libraries = {}
    for ldconfig in LDCONFIG:
        if not os.access(ldconfig, os.X_OK):
            continue
        try:
            _rc, output, _err = run_command([ldconfig, "-p"], timeout=60)
        except (OSError, OtpReleaseError):
            continue
        for line in output.splitlines():
            match = re.match(r"\s+(\S+) \(.*\) => (.+)$", line)
            if match:
                libraries.setdefault(match.group(1), []).append(match.group(2))
        break
    return libraries


def _musl_dirs():
    if not glob.glob("/lib/ld-musl-*"):
        return []
    for path_file in glob.glob("/etc/ld-musl-*.path"):
        try:
            with open(path_file) as handle:
                return [part for part in re.split(r"[:\n]", handle.read()) if part.strip()]
        except OSError:
            pass
    return ["/lib", "/usr/local/lib", "/usr/lib"]


class LibraryFinder:
    """Finds shared libraries the way the dynamic loader would, reading files only."""

    def __init__(self):
        self._cache = None
        self._elves = {}
        self._musl = None
        self.env_dirs = [part for part in re.split(r"[:;]", os.environ.get("LD_LIBRARY_PATH", "")) if part]

    def elf(self, path):
        real = os.path.realpath(path)
        if real not in self._elves:
            try:
                self._elves[real] = read_elf(real)
            except OtpReleaseError as exc:
                self._elves[real] = exc
        found = self._elves[real]
        if isinstance(found, OtpReleaseError):
            raise found
        return found

    def cache(self):
        if self._cache is None:
            self._cache = read_ld_so_cache()
            if self._cache is None:
                self._cache = read_ldconfig_output()
        return self._cache

    def default_dirs(self, elf):
        if self._musl is None:
            self._musl = _musl_dirs()
        dirs = ["/lib", "/usr/lib"] + (["/lib64", "/usr/lib64"] if elf.bits == 64 else ["/lib32", "/usr/lib32"])
        for triplet in MULTIARCH.get(machine_name(elf), []):
            dirs += ["/lib/" + triplet, "/usr/lib/" + triplet]
        return self._musl + dirs

    def find(self, soname, needer):
        """Path of the library `soname` that `needer` (an ElfFile) would load, or None."""
        origin = os.path.dirname(os.path.realpath(needer.path))
        if "/" in soname:
            candidates = [os.path.join(origin, soname)]
        else:
            dirs = ([] if needer.runpath else needer.rpath) + self.env_dirs + needer.runpath
            dirs = [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for d in dirs]
            candidates = [os.path.join(d, soname) for d in dirs]
            candidates += self.cache().get(soname, [])
            candidates += [os.path.join(d, soname) for d in self.default_dirs(needer)]
        for candidate in candidates:
            if os.path.isfile(candidate):
                try:
                    if same_arch(self.elf(candidate), needer):
                        return candidate
                except OtpReleaseError:
                    continue  # e.g. a linker script named libc.so: the loader skips it too
        return None


# ---- the checks -------------------------------------------------------------------------------------

def _relative(root, path):
    root, path = os.path.abspath(root), os.path.abspath(path)
    return os.path.relpath(path, root) if path.startswith(root + os.sep) else path


def check_erts_bundled(root, erts_version):
    erts_dir = "erts-" + erts_version
    if os.path.isdir(os.path.join(root, erts_dir)):
        return _result("erts_bundled", True, "{0} is bundled with the release.".format(erts_dir))
    others = sorted(os.path.basename(p) for p in glob.glob(os.path.join(root, "erts-*")))
    return _result("erts_bundled", False, "The .rel needs ERTS {0} but there is no {1}/ ({2}); {3}.".format(
        erts_version, erts_dir, "found: " + ", ".join(others) if others else "no erts-* at all", INCLUDE_ERTS_HINT))


def check_erts_matches_rel(root, erts_version):
    beam = os.path.join("erts-" + erts_version, "bin", "beam.smp")
    try:
        with open(os.path.join(root, beam), "rb") as handle:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                built = sorted(set(match.decode() for match in EMULATOR_VERSION.findall(data)))
    except (OSError, ValueError):
        return _result("erts_matches_rel", False, "Not checked: {0} is missing or unreadable.".format(beam))
    if not built:
        return _result("erts_matches_rel", True, "{0} carries no version string; its directory name matches the "
                       ".rel's ERTS {1}.".format(beam, erts_version))
    if built == [erts_version]:
        return _result("erts_matches_rel", True, "{0} is ERTS {1}, as the .rel requires.".format(beam, erts_version))
    return _result("erts_matches_rel", False, "{0} is ERTS {1} but the .rel and the directory name say {2}: the "
                   "ERTS was copied from another build; rebuild the release.".format(beam, ", ".join(built), erts_version))


def check_binaries(root, erts_version):
    bin_dir = os.path.join("erts-" + erts_version, "bin")
    required = ["beam.smp", "erlexec", "epmd"]
    if _version_tuple(erts_version) >= ERL_CALL_IN_ERTS:
        required.append("erl_call")
    missing = [name for name in required if not os.path.isfile(os.path.join(root, bin_dir, name))]
    not_executable = [name for name in required if name not in missing
                      and not os.access(os.path.join(root, bin_dir, name), os.X_OK)]
    if not missing and not not_executable:
        return _result("binaries", True, "{0} has {1}, all executable.".format(bin_dir, ", ".join(required)))
    problems = []
    if missing:
        problems.append("lacks " + ", ".join(missing))
    if not_executable:
        problems.append(", ".join(not_executable) + " not executable")
    return _result("binaries", False, "{0} {1}: rebuild the release with include_erts true, or unpack it again "
                   "keeping file modes.".format(bin_dir, "; ".join(problems)))


def check_elf_arch(root, beam, libraries, host):
    """beam.smp and the NIF/driver libraries must be built for this host's machine."""
    try:
        beam_elf = read_elf(beam)
    except OtpReleaseError as exc:
        return _result("elf_arch", False, "Not checked: {0}".format(exc))
    wrong = []
    if not same_arch(beam_elf, host):
        wrong.append("{0} is {1}".format(_relative(root, beam), describe_arch(beam_elf)))
    for library in libraries:
        try:
            library_elf = read_elf(library)
        except OtpReleaseError:
            wrong.append("{0} is not an ELF file".format(_relative(root, library)))
            continue
        if not same_arch(library_elf, host):
            wrong.append("{0} is {1}".format(_relative(root, library), describe_arch(library_elf)))
    if wrong:
        return _result("elf_arch", False, "{0} but this host is {1}: build the release for this machine "
                       "(or on a host like this one).".format("; ".join(wrong), describe_arch(host)))
    return _result("elf_arch", True, "beam.smp{0} {1} {2}, like this host.".format(
        " and {0} NIF/driver librar{1}".format(len(libraries), "y" if len(libraries) == 1 else "ies") if libraries else "",
        "are" if libraries else "is", describe_arch(beam_elf)))


def check_libc(root, beam, host):
    """beam.smp's C library (glibc/musl, by its program interpreter) must be this host's."""
    try:
        beam_elf = read_elf(beam)
    except OtpReleaseError as exc:
        return _result("libc", False, "Not checked: {0}".format(exc))
    beam_libc, host_libc = libc_kind(beam_elf), libc_kind(host)
    name = _relative(root, beam)
    if beam_libc == "none":
        return _result("libc", True, "{0} is statically linked.".format(name))
    if beam_libc != host_libc:
        return _result("libc", False, "{0} is built for {1} (interpreter {2}) but this host uses {3}: build the "
                       "release on a host with the same C library.".format(name, beam_libc, beam_elf.interp, host_libc))
    if not os.path.exists(beam_elf.interp):
        return _result("libc", False, "{0} needs the program interpreter {1}, which this host lacks.".format(
            name, beam_elf.interp))
    detail = "{0} and this host both use {1}".format(name, beam_libc)
    needed, present = _glibc_needed(beam_elf), _host_glibc()
    if beam_libc == "glibc" and needed and present:
        needed_text, present_text = ".".join(map(str, needed)), ".".join(map(str, present))
        if needed > present:
            return _result("libc", False, "{0} needs glibc {1} or newer but this host has glibc {2}: build the "
                           "release on a host with an older glibc.".format(name, needed_text, present_text))
        detail += " (it needs glibc {0} or newer; the host has {1})".format(needed_text, present_text)
    return _result("libc", True, detail + ".")


def check_shared_libraries(root, beam, libraries, finder=None):
    """Every DT_NEEDED of beam.smp and of the NIF/driver libraries (and of what they load) resolves here."""
    finder = finder or LibraryFinder()
    queue = []  # (ElfFile, name to show, the release file it is loaded for or None)
    for start in ([beam] if os.path.isfile(beam) else []) + list(libraries):
        try:
            queue.append((finder.elf(start), _relative(root, start), None))
        except OtpReleaseError:
            pass  # reported by elf_arch
    starts = len(queue)
    seen = set(os.path.realpath(elf.path) for elf, _name, _for in queue)
    problems = []
    checked = 0
    while queue:
        elf, needer, loaded_for = queue.pop(0)
        checked += 1
        if loaded_for:
            needer = "{0} (loaded for {1})".format(needer, loaded_for)
        for soname in elf.needed:
            found = finder.find(soname, elf)
            if found is None:
                problems.append("{0} needed by {1} is not found".format(soname, needer))
                continue
            found_elf = finder.elf(found)
            lacking = [v for v in elf.version_needs.get(soname, []) if v not in found_elf.version_defs]
            if lacking and found_elf.version_defs:  # no version info at all is only a loader warning
                problems.append("{0} needs {1} of {2}, which {3} lacks".format(needer, ", ".join(lacking), soname, found))
            real = os.path.realpath(found)
            if real not in seen:
                seen.add(real)
                queue.append((found_elf, found, loaded_for or needer))
    if problems:
        return _result("shared_libraries", False, "; ".join(problems) + ": install the packages that provide them "
                       "on this host, or ship the libraries in the application's priv directory.")
    needers = (["beam.smp"] if os.path.isfile(beam) else []) + (
        ["{0} NIF/driver librar{1}".format(len(libraries), "y" if len(libraries) == 1 else "ies")] if libraries else [])
    return _result("shared_libraries", True, "All {0} shared libraries needed by {1} resolve on this host.".format(
        checked - starts, " and ".join(needers) or "nothing (no beam.smp, no NIFs)"))


def erts_vs_running(running_erts, release_erts, from_version, restart_kind):
    """A release may change ERTS under a running node only if its relup restarts the emulator.

    `restart_kind` is _relfiles.restart_kind() of the relup entry from `from_version`, the running version.
    """
    if not running_erts:
        return _result("erts_vs_running", True, "No running node to compare ERTS with.")
    if running_erts == release_erts:
        return _result("erts_vs_running", True, "The running node and the release both use ERTS {0}.".format(release_erts))
    if restart_kind in ("emulator", "new_emulator"):
        return _result("erts_vs_running", True, "ERTS changes from {0} to {1} and the relup from {2} restarts the "
                       "emulator (restart_{3}).".format(running_erts, release_erts, from_version, restart_kind))
    return _result("erts_vs_running", False, "ERTS changes from {0} to {1} but the relup from {2} does not restart "
                   "the emulator: the node would go on running ERTS {0}. Regenerate the relup (systools adds "
                   "restart_new_emulator when erts, kernel, stdlib or sasl change) or keep ERTS {0} in this "
                   "release.".format(running_erts, release_erts, from_version))


def _rel_file(root, version, name):
    directory = os.path.join(root, "releases", version)
    if name:
        path = os.path.join(directory, name + ".rel")
        if os.path.isfile(path):
            return path
        raise OtpReleaseError("Release {0} {1} is not unpacked in {2}: {3} is missing.".format(name, version, root, path))
    found = sorted(glob.glob(os.path.join(directory, "*.rel")))
    if len(found) == 1:
        return found[0]
    if not found:
        raise OtpReleaseError("Version {0} is not unpacked in {1}: no releases/{0}/<name>.rel.".format(version, root))
    raise OtpReleaseError("{0} holds several .rel files ({1}): give the release name.".format(
        directory, ", ".join(os.path.basename(p) for p in found)))


def priv_libraries(root, applications):
    """The *.so files under lib/<app>-<vsn>/priv of the given [(app, vsn)]."""
    found = []
    for app, vsn in applications:
        for directory, _dirs, files in os.walk(os.path.join(root, "lib", "{0}-{1}".format(app, vsn), "priv")):
            found += [os.path.join(directory, name) for name in files if name.endswith(".so")]
    return sorted(found)


def check_release(root, version, name=None):
    """Run every ERTS check for the unpacked `version` in `root`; returns the list of results.

    erts_vs_running is not included: it needs the running node, see erts_vs_running().
    """
    rel_path = _rel_file(root, version, name)
    try:
        with open(rel_path, "r", encoding="utf-8", errors="replace") as handle:
            _name, _vsn, erts_version, applications = parse_rel(handle.read(), rel_path)
    except OSError as exc:
        raise OtpReleaseError("Cannot read {0}: {1}".format(rel_path, exc.strerror or exc))
    return run_checks(root, erts_version, applications)


def run_checks(root, erts_version, applications):
    """Every ERTS check for a release whose .rel names this ERTS and these [(app, vsn)]."""
    beam = os.path.join(root, "erts-" + erts_version, "bin", "beam.smp")
    libraries = priv_libraries(root, applications)
    host = host_elf()
    return [
        check_erts_bundled(root, erts_version),
        check_erts_matches_rel(root, erts_version),
        check_binaries(root, erts_version),
        check_elf_arch(root, beam, libraries, host),
        check_libc(root, beam, host),
        check_shared_libraries(root, beam, libraries),
    ]


def verify_tarball(path, name=None, version=None, facts=None):
    """check_release() for a release tarball (facts: its inspection, when done already): only erts-*/bin/* and the
    .so files under the release's lib/<app>-<vsn>/priv are extracted, into a private temporary directory removed
    afterwards."""
    facts = facts or inspect(path, name, version, allow_missing_erts=True)
    rel_member = "releases/{0}/{1}.rel".format(facts.version, facts.name)
    priv_dirs = tuple("lib/{0}-{1}/priv/".format(app, vsn) for app, vsn in facts.applications)

    def wanted(relative):
        return (relative == rel_member or re.match(r"erts-[^/]+/bin/[^/]+$", relative) is not None
                or (relative.startswith(priv_dirs) and ".so" in os.path.basename(relative)))

    directory = tempfile.mkdtemp(prefix="otp-release-verify-")
    try:
        extract_members(path, directory, wanted, facts)
        return check_release(directory, facts.version, facts.name)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
