"""Release tarballs: safe members, the release inside, corrupt files, first-install extraction."""

import gzip
import hashlib
import io
import os
import stat
import tarfile
import warnings

import pytest

from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._files import sha256_file
from ansible_collections.otp.release.plugins.module_utils._tarball import extract, extract_members, inspect, unpacked_limits

REL = '{release,{"kvstore","%s"},{erts,"%s"},[{kernel,"8.5.3"},{stdlib,"4.2"},{kvstore,"%s"},{sasl,"4.2"}]}.\n'
RELUP = (
    '{"2.0.0",\n [{"1.0.0",[],[point_of_no_return]}, {"1.5.0",[],[restart_new_emulator]}],\n'
    ' [{"1.0.0",[],[point_of_no_return]}]}.\n'
)


def entry(name, data=b"", kind=tarfile.REGTYPE, mode=0o644, link=""):
    return dict(name=name, data=data, kind=kind, mode=mode, link=link)


def release_entries(version="2.0.0", erts="13.1.5", name="kvstore", with_erts=True, relup=None):
    entries = [
        entry("releases/{0}/{1}.rel".format(version, name), (REL % (version, erts, version)).replace("kvstore", name).encode()),
        entry("releases/{0}/start.boot".format(version), b"boot"),
        entry("releases/{0}/vm.args".format(version), b"-name kv@127.0.0.1\n"),
        entry("releases/RELEASES", b"[].\n"),
        entry("releases/start_erl.data", "{0} {1}\n".format(erts, version).encode()),
        entry("bin/" + name, b"#!/bin/sh\n", mode=0o755),
        entry("lib/{0}-{1}/ebin/{0}.app".format(name, version), b"{application,kvstore,[]}.\n"),
    ]
    if with_erts:
        entries += [
            entry("erts-{0}/bin/beam.smp".format(erts), b"\x7fELF...", mode=0o755),
            entry("erts-{0}/bin/erlexec".format(erts), b"\x7fELF...", mode=0o755),
        ]
    if relup is not None:
        entries.append(entry("releases/{0}/relup".format(version), relup.encode()))
    return entries


def write_tar(path, entries, compress=True):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in entries:
            info = tarfile.TarInfo(item["name"])
            info.type = item["kind"]
            info.mode = item["mode"]
            info.linkname = item["link"]
            info.mtime = 1700000000
            if item["kind"] == tarfile.REGTYPE:
                info.size = len(item["data"])
                tar.addfile(info, io.BytesIO(item["data"]))
            else:
                tar.addfile(info)
    data = buffer.getvalue()
    path.write_bytes(gzip.compress(data) if compress else data)
    return str(path)


@pytest.fixture
def good(tmp_path):
    return write_tar(tmp_path / "kvstore-2.0.0.tar.gz", release_entries(relup=RELUP))


def test_sha256_file(good):
    with open(good, "rb") as handle:
        assert sha256_file(good) == hashlib.sha256(handle.read()).hexdigest()


def test_inspect_reads_the_release(good):
    facts = inspect(good)
    assert (facts.name, facts.version, facts.erts_version, facts.rel_erts_version) == ("kvstore", "2.0.0", "13.1.5", "13.1.5")
    assert facts.applications == [("kernel", "8.5.3"), ("stdlib", "4.2"), ("kvstore", "2.0.0"), ("sasl", "4.2")]
    assert facts.members == 10
    assert facts.size == os.path.getsize(good)
    assert facts.sha256 == sha256_file(good)
    assert facts.has_releases_file is True
    assert facts.top_level == ["bin", "erts-13.1.5", "lib", "releases"]
    assert facts.bundled_erts_versions == ["13.1.5"]
    assert facts.relup == RELUP
    assert (facts.relup_up_from, facts.relup_down_to) == (["1.0.0", "1.5.0"], ["1.0.0"])


def test_inspect_without_relup_or_releases_file(tmp_path):
    entries = [e for e in release_entries() if e["name"] != "releases/RELEASES"]
    facts = inspect(write_tar(tmp_path / "t.tar.gz", entries))
    assert (facts.relup, facts.relup_up_from, facts.relup_down_to, facts.has_releases_file) == (None, [], [], False)


def test_name_and_version_must_match(good):
    assert inspect(good, name="kvstore", version="2.0.0").version == "2.0.0"
    with pytest.raises(OtpReleaseError, match=r"no release with name 'other' .*found: releases/2.0.0/kvstore.rel"):
        inspect(good, name="other")
    with pytest.raises(OtpReleaseError, match=r"no release with version '3.0.0'"):
        inspect(good, version="3.0.0")


def test_several_releases_need_a_choice(tmp_path):
    entries = release_entries("2.0.0") + [release_entries("1.0.0")[0]]
    path = write_tar(tmp_path / "t.tar.gz", entries)
    with pytest.raises(OtpReleaseError, match=r"several releases \(releases/1.0.0/kvstore.rel, releases/2.0.0/kvstore.rel\)"):
        inspect(path)
    assert inspect(path, version="2.0.0").version == "2.0.0"


def test_not_a_release(tmp_path):
    path = write_tar(tmp_path / "t.tar.gz", [entry("README", b"hi")])
    with pytest.raises(OtpReleaseError, match="no releases/<vsn>/<name>.rel"):
        inspect(path)


def test_missing_erts_is_refused_unless_allowed(tmp_path):
    path = write_tar(tmp_path / "t.tar.gz", release_entries(with_erts=False))
    with pytest.raises(OtpReleaseError, match=r"no erts-13.1.5/bin/beam.smp.*include_erts true.*\{include_erts, true\}.*include_erts: true"):
        inspect(path)
    facts = inspect(path, allow_missing_erts=True)
    assert (facts.erts_version, facts.rel_erts_version, facts.bundled_erts_versions) == (None, "13.1.5", [])


def test_other_erts_is_named(tmp_path):
    entries = release_entries(erts="13.1.5", with_erts=False) + release_entries(erts="13.2", with_erts=True)[-2:]
    with pytest.raises(OtpReleaseError, match=r"runs on ERTS 13.1.5 .*it bundles erts-13.2"):
        inspect(write_tar(tmp_path / "t.tar.gz", entries))


def test_rel_must_describe_its_path(tmp_path):
    entries = release_entries()
    entries[0] = entry("releases/2.0.0/kvstore.rel", (REL % ("1.0.0", "13.1.5", "1.0.0")).encode())
    with pytest.raises(OtpReleaseError, match=r"describes release 'kvstore' version '1.0.0'"):
        inspect(write_tar(tmp_path / "t.tar.gz", entries))


@pytest.mark.parametrize("text, message", [
    ("{release, {\"kvstore\", \"2.0.0\"", "not a valid .rel file"),
    ("{release, kvstore}.", "not a release file"),
])
def test_bad_rel_text(tmp_path, text, message):
    entries = release_entries()
    entries[0] = entry("releases/2.0.0/kvstore.rel", text.encode())
    with pytest.raises(OtpReleaseError, match=message + ".*releases/2.0.0/kvstore.rel|releases/2.0.0/kvstore.rel.*" + message):
        inspect(write_tar(tmp_path / "t.tar.gz", entries))


def test_relup_of_another_version(tmp_path):
    path = write_tar(tmp_path / "t.tar.gz", release_entries(relup=RELUP.replace('"2.0.0"', '"9.9.9"')))
    with pytest.raises(OtpReleaseError, match="relup of version '9.9.9', not of '2.0.0'"):
        inspect(path)


UNSAFE = [
    ([entry("../evil", b"x")], "leads outside the release root"),
    ([entry("a/../../b", b"x")], "leads outside the release root"),
    ([entry("/etc/evil", b"x")], "is an absolute path"),
    ([entry("dev", kind=tarfile.CHRTYPE)], "device or FIFO"),
    ([entry("disk", kind=tarfile.BLKTYPE)], "device or FIFO"),
    ([entry("pipe", kind=tarfile.FIFOTYPE)], "device or FIFO"),
    ([entry("etc", kind=tarfile.SYMTYPE, link="/etc")], "absolute or empty target"),
    ([entry("lib/up", kind=tarfile.SYMTYPE, link="../../x")], "leads outside the release root"),
    # link to "." and then a path through it: a/../x lands one level above the root
    ([entry("a", kind=tarfile.SYMTYPE, link="."), entry("a/../x", b"x")], "leads outside the release root"),
    # a link that escapes only through a link defined after it
    ([entry("c/b", kind=tarfile.SYMTYPE, link="../a/.."), entry("a", kind=tarfile.SYMTYPE, link=".")],
     "leads outside the release root"),
    ([entry("loop", kind=tarfile.SYMTYPE, link="loop")], "symlink loop"),
    ([entry("hard", kind=tarfile.LNKTYPE, link="../x")], "leads outside the release root"),
    ([entry("hard", kind=tarfile.LNKTYPE, link="nothing")], "not an earlier file"),
    ([entry("bin/x", b"1"), entry("bin/x", b"2")], "appears twice"),
    ([entry("bin/x", b"1"), entry("bin/x", kind=tarfile.SYMTYPE, link="y")], "appears twice or replaces"),
    ([entry("notes", b"1"), entry("notes/x", b"2")], "which is not a directory"),
    ([entry("x/", b"1")], "names a directory but is not one"),
]


@pytest.mark.parametrize("bad, message", UNSAFE)
def test_unsafe_members_are_refused(tmp_path, bad, message):
    path = write_tar(tmp_path / "t.tar.gz", release_entries() + bad)
    with pytest.raises(OtpReleaseError, match=message) as caught:
        inspect(path)
    assert "Refusing this tarball" in str(caught.value)
    dest = tmp_path / "root"
    with pytest.raises(OtpReleaseError):
        extract(path, str(dest), None)
    assert not dest.exists() and not (tmp_path / "x").exists()


def test_harmless_names_are_accepted(tmp_path):
    extra = [
        entry("./", kind=tarfile.DIRTYPE, mode=0o755),
        entry("./lib/kvstore-2.0.0/priv/données-ü.txt", b"unicode"),
        entry("lib/kvstore-2.0.0/priv/back\\slash", b"literal backslash"),
        entry("lib/kvstore-2.0.0/priv/x/../y", b"stays inside"),
        entry("lib/kvstore-2.0.0/priv/link", kind=tarfile.SYMTYPE, link="../ebin/kvstore.app"),
        entry("lib/kvstore-2.0.0/priv/dangling", kind=tarfile.SYMTYPE, link="missing/inside"),
        entry("lib/kvstore-2.0.0/priv/hard", kind=tarfile.LNKTYPE, link="bin/kvstore"),
        entry("lib/kvstore-2.0.0/priv/sub", kind=tarfile.DIRTYPE, mode=0o755),
        entry("lib/kvstore-2.0.0/priv/sub", kind=tarfile.DIRTYPE, mode=0o755),
    ]
    path = write_tar(tmp_path / "t.tar.gz", release_entries() + extra)
    facts = inspect(path)
    dest = tmp_path / "root"
    extract(path, str(dest), facts)
    priv = dest / "lib" / "kvstore-2.0.0" / "priv"
    assert (priv / "données-ü.txt").read_bytes() == b"unicode"
    assert (priv / "back\\slash").exists()
    assert (priv / "y").read_bytes() == b"stays inside"
    assert os.readlink(str(priv / "link")) == "../ebin/kvstore.app"
    assert (priv / "link").read_bytes() == b"{application,kvstore,[]}.\n"
    assert os.path.samefile(str(priv / "hard"), str(dest / "bin" / "kvstore"))


def truncated(tmp_path, good, keep):
    data = open(good, "rb").read()
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[:keep(len(data))])
    return str(path)


@pytest.mark.parametrize("keep", [lambda n: n // 2, lambda n: n - 4, lambda n: 10, lambda n: 0])
def test_truncated_archives_are_refused(tmp_path, good, keep):
    with pytest.raises(OtpReleaseError, match="truncated or corrupt"):
        inspect(truncated(tmp_path, good, keep))


def test_flipped_byte_is_refused(tmp_path, good):
    data = bytearray(open(good, "rb").read())
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(OtpReleaseError, match="truncated or corrupt"):
        inspect(str(path))


def test_plain_tar_is_refused(tmp_path):
    path = write_tar(tmp_path / "t.tar", release_entries(), compress=False)
    with pytest.raises(OtpReleaseError, match="not gzip-compressed"):
        inspect(path)


def test_trailing_garbage_is_refused_but_zero_padding_is_fine(tmp_path, good):
    data = open(good, "rb").read()
    padded = tmp_path / "padded.tar.gz"
    padded.write_bytes(data + b"\0" * 1000)
    assert inspect(str(padded)).sha256 == sha256_file(str(padded))
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(data + b"junk")
    with pytest.raises(OtpReleaseError, match="after the end of the gzip stream"):
        inspect(str(garbage))


def test_tar_cut_inside_a_valid_gzip_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for item in release_entries():
            info = tarfile.TarInfo(item["name"])
            info.size = len(item["data"])
            tar.addfile(info, io.BytesIO(item["data"]))
        info = tarfile.TarInfo("lib/kvstore-2.0.0/priv/big")
        info.size = 100000
        tar.addfile(info, io.BytesIO(b"b" * 100000))
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(gzip.compress(buffer.getvalue()[:-(100000 // 2 + 10240)]))
    with pytest.raises(OtpReleaseError, match="truncated or corrupt"):
        inspect(str(path))


def test_corrupt_header_in_the_middle_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for item in release_entries():
            info = tarfile.TarInfo(item["name"])
            info.size = len(item["data"])
            tar.addfile(info, io.BytesIO(item["data"]))
    data = bytearray(buffer.getvalue())
    header = data.index(b"releases/RELEASES")  # a header in the middle: break its checksum
    data[header + 100] ^= 0x01
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(OtpReleaseError, match="unreadable tar data"):
        inspect(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(OtpReleaseError, match="Cannot open release tarball"):
        inspect(str(tmp_path / "nope.tar.gz"))
    with pytest.raises(OtpReleaseError, match="Cannot read"):
        sha256_file(str(tmp_path / "nope.tar.gz"))


def test_extract_first_install(tmp_path):
    entries = release_entries() + [
        entry("erts-13.1.5/bin/group-writable", b"x", mode=0o775),
        entry("lib/kvstore-2.0.0/priv/ro", kind=tarfile.DIRTYPE, mode=0o555),
        entry("lib/kvstore-2.0.0/priv/ro/file", b"x", mode=0o444),
    ]
    path = write_tar(tmp_path / "t.tar.gz", entries)
    facts = inspect(path)
    dest = tmp_path / "opt" / "kvstore"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract(path, str(dest), facts)
    assert stat.S_IMODE((dest / "bin" / "kvstore").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "erts-13.1.5" / "bin" / "group-writable").stat().st_mode) == 0o775
    assert stat.S_IMODE((dest / "releases" / "2.0.0" / "vm.args").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "lib" / "kvstore-2.0.0" / "priv" / "ro").stat().st_mode) == 0o755
    assert (dest / "releases" / "2.0.0" / "kvstore.rel").read_text().startswith("{release")
    assert (dest / "bin" / "kvstore").stat().st_mtime == 1700000000
    assert sorted(os.listdir(str(tmp_path / "opt"))) == ["kvstore"]  # no temporary directory left


@pytest.mark.parametrize("mode, kind", [(0o4755, tarfile.REGTYPE), (0o2755, tarfile.REGTYPE), (0o666, tarfile.REGTYPE),
                                        (0o6777, tarfile.REGTYPE), (0o1777, tarfile.DIRTYPE), (0o777, tarfile.DIRTYPE)])
def test_unsafe_modes_are_refused_before_anything_is_written(tmp_path, mode, kind):
    path = write_tar(tmp_path / "t.tar.gz", release_entries() + [entry("lib/kvstore-2.0.0/priv/x", b"", kind=kind, mode=mode)])
    with pytest.raises(OtpReleaseError, match="has mode %04o: setuid, setgid, sticky or world-writable" % mode):
        inspect(path)


def test_a_bomb_is_refused_by_its_declared_sizes_before_it_is_inflated(tmp_path):
    path = write_tar(tmp_path / "t.tar.gz", release_entries() + [entry("lib/kvstore-2.0.0/priv/zeros", b"\0" * (3 << 20))])
    with pytest.raises(OtpReleaseError, match="refusing it as a decompression bomb"):
        inspect(path, max_unpacked_size=2 << 20)
    assert inspect(path).unpacked_size > 3 << 20


def test_the_default_limits_grow_with_the_compressed_size():
    assert unpacked_limits(1 << 20) == (256 << 20, 64 << 20)
    assert unpacked_limits(100 << 20) == (2500 << 20, 1000 << 20)
    assert unpacked_limits(100 << 20, 50 << 20) == (50 << 20, 50 << 20)


def test_extract_into_empty_directory_keeps_its_mode(tmp_path, good):
    dest = tmp_path / "root"
    dest.mkdir()
    dest.chmod(0o750)
    extract(good, str(dest), inspect(good))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert (dest / "releases" / "RELEASES").exists()


def test_extract_refuses_a_non_empty_root(tmp_path, good):
    dest = tmp_path / "root"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(OtpReleaseError, match="not an empty directory.*first install"):
        extract(good, str(dest), inspect(good))
    assert os.listdir(str(dest)) == ["keep"]


def test_extract_leaves_dest_alone_when_the_file_changed(tmp_path, good):
    facts = inspect(good)
    path = write_tar(tmp_path / "kvstore-2.0.0.tar.gz", release_entries(version="2.0.0", relup=None))
    dest = tmp_path / "root"
    with pytest.raises(OtpReleaseError, match="changed while it was being unpacked"):
        extract(path, str(dest), facts)
    assert not dest.exists()
    assert sorted(os.listdir(str(tmp_path))) == ["kvstore-2.0.0.tar.gz"]


def test_extract_leaves_dest_alone_on_a_truncated_file(tmp_path, good):
    path = truncated(tmp_path, good, lambda n: n - 20)
    dest = tmp_path / "root"
    dest.mkdir()
    with pytest.raises(OtpReleaseError, match="truncated or corrupt"):
        extract(path, str(dest), None)
    assert os.listdir(str(dest)) == []
    assert sorted(os.listdir(str(tmp_path))) == ["cut.tar.gz", "kvstore-2.0.0.tar.gz", "root"]


def test_extract_members_takes_a_subset(tmp_path, good):
    directory = tmp_path / "part"
    directory.mkdir()
    extract_members(good, str(directory), lambda relative: relative.startswith("erts-"), inspect(good))
    found = sorted(os.path.relpath(os.path.join(d, f), str(directory)) for d, _s, fs in os.walk(str(directory)) for f in fs)
    assert found == ["erts-13.1.5/bin/beam.smp", "erts-13.1.5/bin/erlexec"]


def test_real_relx_style_layout_with_directories(tmp_path):
    """Directory entries first, as GNU tar and Distillery write them."""
    entries = [entry(d, kind=tarfile.DIRTYPE, mode=0o755) for d in ("bin", "erts-13.1.5", "erts-13.1.5/bin", "releases", "releases/2.0.0")]
    path = write_tar(tmp_path / "t.tar.gz", entries + release_entries())
    facts = inspect(path)
    assert facts.members == len(entries) + 9
    extract(path, str(tmp_path / "root"), facts)
    assert (tmp_path / "root" / "erts-13.1.5" / "bin" / "beam.smp").exists()


def test_extract_refuses_a_symlinked_root(tmp_path, good):
    (tmp_path / "real").mkdir()
    os.symlink(str(tmp_path / "real"), str(tmp_path / "root"))
    with pytest.raises(OtpReleaseError, match="is a symlink: give the real directory"):
        extract(good, str(tmp_path / "root"), inspect(good))
    assert os.listdir(str(tmp_path / "real")) == []
