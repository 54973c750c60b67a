# -*- coding: utf-8 -*-
# Copyright (c) 2026, otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Safe inspection and extraction of release tarballs (`<name>-<vsn>.tar.gz`), and their sha256.

The tarball is read as one stream: the compressed bytes are hashed and inflated as they go past, and
every member is checked before anything is written. Members are written by our own code, not by
tarfile's extraction, so the rules are the same on every Python version and no owner is changed.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field

from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._files import sha256_file
from ansible_collections.otp.release.plugins.module_utils._relfiles import Relup, parse_rel

BLOCK_SIZE = 1 << 20
INFLATE_CHUNK = 1 << 16
SMALL_FILE_LIMIT = 16 << 20  # .rel and relup files are read into memory
SYMLINK_HOPS_LIMIT = 40
# A tarball may inflate to INFLATE_RATIO times its compressed size (at least TOTAL_FLOOR), one member to
# MEMBER_RATIO times (at least MEMBER_FLOOR): a release compresses 3-5 times, a decompression bomb 100s of times.
INFLATE_RATIO, TOTAL_FLOOR = 25, 256 << 20
MEMBER_RATIO, MEMBER_FLOOR = 10, 64 << 20
HEADER_ALLOWANCE = 64 << 20  # tar headers and padding on top of the members' data
# Refused in any file or directory: release_handler would install such a mode as it is.
UNSAFE_MODE_BITS = 0o7002

REL_MEMBER = re.compile(r"releases/([^/]+)/([^/]+)\.rel")
RELUP_MEMBER = re.compile(r"releases/([^/]+)/relup")
BEAM_MEMBER = re.compile(r"erts-([^/]+)/bin/beam\.smp")

INCLUDE_ERTS_HINT = (
    "hot upgrades need ERTS bundled: rebuild with include_erts true "
    "(relx/rebar3 `{include_erts, true}`, Distillery `include_erts: true`, mix release `include_erts: true`)"
)


@dataclass
class TarballFacts:
    name: str
    version: str
    erts_version: str | None  # the bundled ERTS the release runs on; None when the tarball has none
    rel_erts_version: str  # the .rel's {erts, Vsn}
    bundled_erts_versions: list  # every erts-<vsn>/bin/beam.smp in the tarball
    applications: list  # [(app, vsn)] from the .rel
    members: int
    size: int
    sha256: str
    relup: str | None  # text of releases/<vsn>/relup
    relup_up_from: list = field(default_factory=list)
    relup_down_to: list = field(default_factory=list)
    has_releases_file: bool = False  # ships releases/RELEASES
    top_level: list = field(default_factory=list)
    unpacked_size: int = 0  # bytes of the regular members
    max_unpacked_size: int | None = None  # the limit it was inspected with (None: the default)


def _corrupt(path, problem):
    return OtpReleaseError(
        "{0}: truncated or corrupt: {1}. Copy or download the tarball again and compare its sha256 "
        "with the one from the build.".format(path, problem)
    )


def _refuse(path, member_name, problem):
    return OtpReleaseError(
        "{0}: member {1!r} {2}. Refusing this tarball: a release tarball holds only files, directories "
        "and relative links inside the release root; rebuild it with relx/rebar3, Distillery or "
        "mix release.".format(path, member_name, problem)
    )


class _GzipStream:
    """File-like object over a .gz file: hands out inflated bytes, hashes the compressed ones.

    zlib checks the gzip CRC and length at the end of the stream; a stream that stops early is
    reported as truncated. The last few chunks handed out are kept so the caller can check what
    followed the end of the tar archive.
    """

    def __init__(self, handle, path, limit):
        self._handle = handle
        self._path = path
        self._limit = limit
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buffer = b""
        self._offset = 0
        self._finished = False
        self._magic = b""
        self.sha256 = hashlib.sha256()
        self.size = 0  # compressed bytes read
        self.position = 0  # inflated bytes handed out
        self.recent = collections.deque(maxlen=8)  # (start position, bytes)

    def read(self, size=-1):
        wanted = size if size is not None and size >= 0 else 1 << 62
        parts = []
        while wanted > 0:
            if self._offset >= len(self._buffer):
                self._buffer, self._offset = self._inflate_more(), 0
                if not self._buffer:
                    break
            part = self._buffer[self._offset:self._offset + wanted]
            self._offset += len(part)
            wanted -= len(part)
            parts.append(part)
        data = b"".join(parts)
        if data:
            self.recent.append((self.position, data))
            self.position += len(data)
            if self.position > self._limit:
                raise OtpReleaseError("{0} inflates to more than {1} bytes, which no release of this size does: refusing it "
                                      "as a decompression bomb. Nothing was written.".format(self._path, self._limit))
        return data

    def _read_raw(self):
        try:
            block = self._handle.read(BLOCK_SIZE)
        except OSError as exc:
            raise OtpReleaseError("Cannot read {0}: {1}".format(self._path, exc.strerror or exc))
        if not self.size:
            self._magic = block[:2]
        self.sha256.update(block)
        self.size += len(block)
        return block

    def _inflate_more(self):
        while not self._finished:
            if self._inflate.eof:
                self._finish()
                break
            data = self._inflate.unconsumed_tail or self._read_raw()
            if not data:
                if self.size == 0:
                    raise _corrupt(self._path, "the file is empty")
                raise _corrupt(self._path, "the gzip stream ends early (after {0} bytes)".format(self.size))
            try:
                inflated = self._inflate.decompress(data, INFLATE_CHUNK)
            except zlib.error as exc:
                if self._magic != b"\x1f\x8b":
                    raise _corrupt(self._path, "not gzip-compressed data ({0}); release tarballs are .tar.gz".format(exc))
                raise _corrupt(self._path, "zlib: {0}".format(exc))
            if inflated:
                return inflated
        return b""

    def _finish(self):
        """Hash the rest of the file; only zero padding may follow the gzip stream."""
        self._finished = True
        rest = self._inflate.unused_data
        while True:
            if rest.strip(b"\0"):
                raise _corrupt(self._path, "unexpected data after the end of the gzip stream")
            rest = self._read_raw()
            if not rest:
                return

    def drain_zeros(self, from_position):
        """Read to the end, checking that every inflated byte from `from_position` on is zero."""
        for start, data in self.recent:
            if start + len(data) > from_position and data[max(0, from_position - start):].strip(b"\0"):
                return False
        while True:
            data = self.read(INFLATE_CHUNK)
            if not data:
                return True
            if data.strip(b"\0"):
                return False


class _Members:
    """Checks members in archive order against what extracting them would have made on disk.

    Paths are kept "physical": the archive's own symlinks are followed, so a member written through a
    link, or a link reached through another link, is judged by where it really lands.
    """

    def __init__(self, path, total_limit, member_limit):
        self.path = path
        self.total_limit = total_limit
        self.member_limit = member_limit
        self.total = 0  # bytes of the regular members so far
        self.repeated = False  # the member just checked repeats an earlier file
        self.kinds = {}  # physical path (tuple) -> "dir" | "file" | "link"
        self.symlinks = {}  # physical path (tuple) -> link target text
        self.count = 0
        self.data_end = 0  # where the last member's data ends in the tar stream

    def resolve(self, member_name, parts, subject=""):
        """Physical path of `parts` from the root, following the archive's symlinks."""
        resolved = []
        pending = list(parts)
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise _refuse(self.path, member_name, subject + "leads outside the release root")
                resolved.pop()
                continue
            resolved.append(part)
            target = self.symlinks.get(tuple(resolved))
            if target is not None:
                hops += 1
                if hops > SYMLINK_HOPS_LIMIT:
                    raise _refuse(self.path, member_name, subject + "goes through a symlink loop")
                resolved.pop()
                pending[:0] = target.split("/")
        return tuple(resolved)

    def check(self, member):
        """Return (physical path, physical hard link source or None); None path for the root itself."""
        name = member.name
        self.count += 1
        if member.isreg():
            self.data_end = max(self.data_end, member.offset_data + member.size)
            self.check_size(member)
        if not name:
            raise _refuse(self.path, name, "has an empty name")
        if name.startswith("/"):
            raise _refuse(self.path, name, "is an absolute path")
        if member.ischr() or member.isblk() or member.isfifo():
            raise _refuse(self.path, name, "is a device or FIFO")
        if member.issparse():
            raise _refuse(self.path, name, "is a sparse file")
        if not (member.isdir() or member.isreg() or member.issym() or member.islnk()):
            raise _refuse(self.path, name, "has an unsupported type ({0!r})".format(member.type))
        if (member.isreg() or member.isdir()) and member.mode & UNSAFE_MODE_BITS:
            raise _refuse(self.path, name, "has mode {0:04o}: setuid, setgid, sticky or world-writable".format(member.mode))
        parts = name.split("/")
        if parts[-1] in ("", ".", ".."):
            if not member.isdir():
                raise _refuse(self.path, name, "names a directory but is not one")
            self.resolve(name, parts)  # "./", "a/..": only checked to stay inside
            return None, None
        parent = self.resolve(name, parts[:-1])
        for depth in range(1, len(parent) + 1):
            kind = self.kinds.setdefault(parent[:depth], "dir")
            if kind != "dir":
                raise _refuse(self.path, name, "is inside {0!r}, which is not a directory".format("/".join(parent[:depth])))
        physical = parent + (parts[-1],)
        kind = "dir" if member.isdir() else "link" if member.issym() else "file"
        previous = self.kinds.get(physical)
        # Distillery adds some files twice, byte for byte: the content is compared by inspect(), and the first copy is
        # the one written (as release_handler's keep_old_files does).
        self.repeated = previous == kind == "file"
        if previous is not None and not (previous == kind == "dir") and not self.repeated:
            raise _refuse(self.path, name, "appears twice or replaces an earlier member at {0!r}".format("/".join(physical)))
        self.kinds[physical] = kind
        source = None
        if member.issym():
            if not member.linkname or member.linkname.startswith("/"):
                raise _refuse(self.path, name, "is a symlink with an absolute or empty target {0!r}".format(member.linkname))
            self.symlinks[physical] = member.linkname
        elif member.islnk():
            if member.linkname.startswith("/"):
                raise _refuse(self.path, name, "is a hard link to an absolute path {0!r}".format(member.linkname))
            source = self.resolve(name, member.linkname.split("/"), "is a hard link to {0!r} that ".format(member.linkname))
            if self.kinds.get(source) != "file":
                raise _refuse(self.path, name, "is a hard link to {0!r}, which is not an earlier file of the archive".format(member.linkname))
        return physical, source

    def check_size(self, member):
        """Refuse before its data is inflated a member, or a total, larger than the limits."""
        self.total += member.size
        if member.size > self.member_limit:
            raise OtpReleaseError("{0}: member {1!r} is {2} bytes, more than the {3} bytes one member of this tarball may "
                                  "have: refusing it as a decompression bomb. Nothing was written.".format(
                                      self.path, member.name, member.size, self.member_limit))
        if self.total > self.total_limit:
            raise OtpReleaseError("{0} unpacks to more than {1} bytes (at member {2!r}): refusing it as a decompression bomb. "
                                  "Nothing was written. If the release really is that large, raise max_unpacked_size."
                                  .format(self.path, self.total_limit, member.name))

    def check_symlink_targets(self):
        """Every link, with all the archive's links known, must end up inside the root."""
        for link, target in self.symlinks.items():
            self.resolve("/".join(link), list(link[:-1]) + target.split("/"), "is a symlink to {0!r} that ".format(target))


def unpacked_limits(compressed_size, max_unpacked_size=None):
    """(total, per member) bytes a tarball of this compressed size may unpack to."""
    total = max_unpacked_size or max(TOTAL_FLOOR, INFLATE_RATIO * compressed_size)
    return total, min(total, max(MEMBER_FLOOR, MEMBER_RATIO * compressed_size))


def _walk(path, visit, max_unpacked_size=None):
    """Stream the tarball once, check every member, call visit(tar, member, physical, source, repeated).

    Returns (members checker, gzip stream) once the whole file has been read and verified.
    """
    try:
        handle = open(path, "rb")
        total_limit, member_limit = unpacked_limits(os.fstat(handle.fileno()).st_size, max_unpacked_size)
    except OSError as exc:
        raise OtpReleaseError("Cannot open release tarball {0}: {1}".format(path, exc.strerror or exc))
    with handle:
        stream = _GzipStream(handle, path, total_limit + HEADER_ALLOWANCE)
        members = _Members(path, total_limit, member_limit)
        try:
            with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:
                for member in tar:
                    physical, source = members.check(member)
                    visit(tar, member, physical, source, members.repeated)
                end_of_archive = tar.offset
            members.check_symlink_targets()
            if not stream.drain_zeros(end_of_archive):
                raise _corrupt(path, "unreadable tar data at offset {0} of the archive".format(end_of_archive))
            if members.data_end > stream.position:
                raise _corrupt(path, "the tar archive ends inside a member's data")
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise _corrupt(path, "{0}: {1}".format(type(exc).__name__, exc))
    return members, stream


def _digest(tar, member, text=None):
    """Digest of a member's data (text: the data, already read as text)."""
    digest = hashlib.blake2b(digest_size=16)
    if text is not None:
        digest.update(text.encode("utf-8", "surrogateescape"))
        return digest.digest()
    handle = tar.extractfile(member)
    for block in iter(lambda: handle.read(BLOCK_SIZE), b""):
        digest.update(block)
    return digest.digest()


def _read_member(tar, member, path):
    if member.size > SMALL_FILE_LIMIT:
        raise OtpReleaseError("{0}: {1} is {2} bytes, too large to be a release file.".format(path, member.name, member.size))
    return tar.extractfile(member).read().decode("utf-8", errors="replace")


def _pick_release(path, rel_texts, name, version):
    """The one (name, vsn) whose releases/<vsn>/<name>.rel matches the asked name and version."""
    found = sorted(rel_texts)
    matching = [(n, v) for n, v in found if (name is None or n == name) and (version is None or v == version)]
    if len(matching) == 1:
        return matching[0]
    found_text = ", ".join("releases/{1}/{0}.rel".format(n, v) for n, v in found) or "none"
    if not found:
        raise OtpReleaseError(
            "{0}: not a release tarball: no releases/<vsn>/<name>.rel inside. Build it with "
            "`rebar3 tar`, Distillery or `mix release`.".format(path)
        )
    if not matching:
        wanted = " ".join(x for x in ("name {0!r}".format(name) if name else "", "version {0!r}".format(version) if version else "") if x)
        raise OtpReleaseError("{0}: holds no release with {1} (found: {2}).".format(path, wanted, found_text))
    raise OtpReleaseError(
        "{0}: holds several releases ({1}): say which one with name and version.".format(path, found_text)
    )


def inspect(path, name=None, version=None, allow_missing_erts=False, max_unpacked_size=None):
    """Check a release tarball and return its TarballFacts, reading the file once.

    Raises OtpReleaseError for an unsafe member, a corrupt or truncated file, no or several
    matching `releases/<vsn>/<name>.rel`, or (unless allow_missing_erts) ERTS not bundled.
    """
    rel_texts = {}  # (name, vsn) -> (member name, text)
    relup_texts = {}  # vsn -> (member name, text)
    beam_versions = set()
    top_level = set()
    has_releases_file = False
    contents = {}  # physical path -> (digest, mode) of each regular file, to compare a repeated one with

    def visit(tar, member, physical, _source, repeated):
        nonlocal has_releases_file
        if not physical:
            return
        top_level.add(physical[0])
        relative = "/".join(physical)
        if not member.isreg():
            return
        rel_match, relup_match = REL_MEMBER.fullmatch(relative), RELUP_MEMBER.fullmatch(relative)
        text = _read_member(tar, member, path) if rel_match or relup_match else None
        content = (_digest(tar, member, text), member.mode)
        if repeated:
            if content != contents[physical]:
                raise _refuse(path, member.name, "appears twice with different content or mode")
            return
        contents[physical] = content
        if relative == "releases/RELEASES":
            has_releases_file = True
        match = BEAM_MEMBER.fullmatch(relative)
        if match:
            beam_versions.add(match.group(1))
        if rel_match:
            rel_texts[(rel_match.group(2), rel_match.group(1))] = (member.name, text)
        if relup_match:
            relup_texts[relup_match.group(1)] = (member.name, text)

    members, stream = _walk(path, visit, max_unpacked_size)
    rel_name, rel_vsn = _pick_release(path, rel_texts, name, version)
    member_name, text = rel_texts[(rel_name, rel_vsn)]
    term_name, term_vsn, erts_vsn, applications = parse_rel(text, "{0}: {1}".format(path, member_name))
    if (term_name, term_vsn) != (rel_name, rel_vsn):
        raise OtpReleaseError(
            "{0}: {1} describes release {2!r} version {3!r}, which does not match its path; "
            "rebuild the release.".format(path, member_name, term_name, term_vsn)
        )
    if erts_vsn not in beam_versions and not allow_missing_erts:
        bundled = ", ".join("erts-" + v for v in sorted(beam_versions))
        raise OtpReleaseError(
            "{0}: release {1} {2} runs on ERTS {3} but the tarball has no erts-{3}/bin/beam.smp{4}; "
            "{5}.".format(path, rel_name, rel_vsn, erts_vsn, " (it bundles {0})".format(bundled) if bundled else "", INCLUDE_ERTS_HINT)
        )
    relup_text, up_from, down_to = None, [], []
    if rel_vsn in relup_texts:
        relup_member, relup_text = relup_texts[rel_vsn]
        relup = Relup.from_text(relup_text, "{0}: {1}".format(path, relup_member), rel_vsn)
        up_from, down_to = relup.up_from(), relup.down_to()
    return TarballFacts(
        name=rel_name,
        version=rel_vsn,
        erts_version=erts_vsn if erts_vsn in beam_versions else None,
        rel_erts_version=erts_vsn,
        bundled_erts_versions=sorted(beam_versions),
        applications=applications,
        members=members.count,
        size=stream.size,
        unpacked_size=members.total,
        max_unpacked_size=max_unpacked_size,
        sha256=stream.sha256.hexdigest(),
        relup=relup_text,
        relup_up_from=up_from,
        relup_down_to=down_to,
        has_releases_file=has_releases_file,
        top_level=sorted(top_level),
    )


def _file_mode(member):
    # the producer's mode, as release_handler keeps it (the unsafe bits were refused by _Members.check)
    return member.mode & 0o777


def _write_members(path, directory, facts, wanted=None):
    """Write the tarball's members (those `wanted(relative path)` accepts) under `directory`."""
    directory_modes = []

    def target(physical):
        return os.path.join(directory, *physical)

    def visit(tar, member, physical, source, repeated):
        if not physical or repeated or (wanted is not None and not wanted("/".join(physical))):
            return
        where = target(physical)
        # parent components are real directories by construction (links were resolved)
        parent = os.path.dirname(where)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        if member.isdir():
            if not os.path.isdir(where):
                os.mkdir(where, 0o700)
            directory_modes.append((where, (member.mode & 0o777) | 0o700, member.mtime))
        elif member.issym():
            os.symlink(member.linkname, where)
        elif member.islnk():
            if os.path.lexists(target(source)):
                os.link(target(source), where)
        else:
            descriptor = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(descriptor, "wb") as out:
                shutil.copyfileobj(tar.extractfile(member), out, BLOCK_SIZE)
                os.fchmod(out.fileno(), _file_mode(member))
            os.utime(where, (member.mtime, member.mtime))

    _members, stream = _walk(path, visit, facts.max_unpacked_size if facts else None)
    for where, mode, mtime in reversed(directory_modes):
        os.chmod(where, mode)
        os.utime(where, (mtime, mtime))
    if facts is not None and stream.sha256.hexdigest() != facts.sha256:
        raise OtpReleaseError(
            "{0} changed while it was being unpacked (sha256 {1}, inspected as {2}); nothing was "
            "installed: copy the tarball again.".format(path, stream.sha256.hexdigest(), facts.sha256)
        )


def extract(path, dest, facts):
    """First install: unpack the inspected tarball into `dest`, which must be missing or empty.

    The files go to a temporary sibling directory that is renamed to `dest` at the end, so `dest` is
    either complete or left as it was. Modes are kept (inspect refuses unsafe ones); owners are not
    changed: files belong to the user running this.
    """
    dest = os.path.abspath(dest)
    if os.path.islink(dest):
        raise OtpReleaseError(
            "{0} is a symlink: give the real directory ({1}) as the release root.".format(dest, os.path.realpath(dest))
        )
    if os.path.lexists(dest) and not (os.path.isdir(dest) and not os.listdir(dest)):
        raise OtpReleaseError(
            "{0} exists and is not an empty directory: a tarball is extracted only for a first install. "
            "Unpack upgrades through the running node (release_handler), never over a live root.".format(dest)
        )
    facts = facts or inspect(path)
    parent = os.path.dirname(dest)
    root_mode = os.stat(dest).st_mode & 0o7777 if os.path.isdir(dest) else 0o755
    try:
        os.makedirs(parent, 0o755, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".{0}.unpacking-".format(os.path.basename(dest)), dir=parent)
    except OSError as exc:
        raise OtpReleaseError("Cannot create a directory next to {0}: {1}".format(dest, exc))
    try:
        _write_members(path, staging, facts)
        os.chmod(staging, root_mode)
        os.rename(staging, dest)  # replaces a missing or empty directory in one step
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OtpReleaseError(
                "Cannot extract {0} into {1}: {2}. {1} was left as it was.".format(path, dest, exc)
            )
        raise


def extract_members(path, directory, wanted, facts=None):
    """Write only the members whose relative path `wanted(path)` accepts into existing `directory`.

    For looking at parts of a tarball (e.g. ERTS binaries) in a private directory; no rename, no
    cleanup: the caller owns `directory`.
    """
    try:
        _write_members(path, directory, facts, wanted)
    except OSError as exc:
        raise OtpReleaseError("Cannot extract parts of {0} into {1}: {2}".format(path, directory, exc))


CHECKSUM_RE = re.compile(r"sha256:([0-9a-fA-F]{64})$")


def parse_checksum(checksum):
    """'sha256:<hex>' -> the lower-case hex digest; None stays None."""
    if not checksum:
        return None
    match = CHECKSUM_RE.match(checksum.strip())
    if not match:
        raise OtpReleaseError("checksum must be 'sha256:' followed by 64 hex digits, not %r." % checksum)
    return match.group(1).lower()


def checksum_mismatch(path, expected, actual):
    return OtpReleaseError("%s does not match its checksum: expected sha256:%s, actual sha256:%s. The file is damaged or "
                           "not the one meant; copy or download it again. Nothing was changed." % (path, expected, actual))


def inspect_file(src, name=None, version=None, checksum=None, allow_missing_erts=False, max_unpacked_size=None):
    """inspect() of the tarball at src on this host, after its checksum ('sha256:<hex>' or None) matched."""
    expected = parse_checksum(checksum)
    if not os.path.isfile(src):
        raise OtpReleaseError("The release tarball %s does not exist on this host (or is not a file)." % src)
    if expected:
        actual = sha256_file(src)
        if actual != expected:
            raise checksum_mismatch(src, expected, actual)
    return inspect(src, name, version, allow_missing_erts, max_unpacked_size)
