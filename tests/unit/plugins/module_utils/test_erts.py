"""ERTS checks: ELF parsing (hand-built files), library lookup, the checks on synthetic and real roots."""

import glob
import gzip
import io
import os
import struct
import sys
import tarfile
import tempfile

import pytest

from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, parse
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._erts import (
    LibraryFinder,
    check_binaries,
    check_elf_arch,
    check_erts_bundled,
    check_erts_matches_rel,
    check_libc,
    check_release,
    check_shared_libraries,
    describe_arch,
    erts_vs_running,
    host_elf,
    libc_kind,
    machine_name,
    read_elf,
    read_ld_so_cache,
    read_ldconfig_output,
    verify_tarball,
)
from ansible_collections.otp.release.plugins.module_utils._relfiles import restart_kind

HOST = host_elf()
# Only the C library: the interpreter running the tests may need libraries it finds through its own RUNPATH.
HOST_LIBC = [name for name in HOST.needed if name.startswith("libc.so")]
SYSTEM_ERLANG = "/usr/lib/erlang"
needs_erlang = pytest.mark.skipif(not os.path.isdir(SYSTEM_ERLANG), reason="no Erlang at /usr/lib/erlang")


def make_elf(bits=64, endian="little", machine=62, interp=None, needed=(), runpath=None, rpath=None,
             version_needs=None, version_defs=(), soname="libself.so.1"):
    """A minimal ELF shared object: one PT_LOAD over the whole file (addresses = offsets)."""
    order = "<" if endian == "little" else ">"
    strings = bytearray(b"\0")

    def add(text):
        position = len(strings)
        strings.extend(text.encode() + b"\0")
        return position

    dynamic = [(1, add(name)) for name in needed]
    if runpath is not None:
        dynamic.append((29, add(runpath)))
    if rpath is not None:
        dynamic.append((15, add(rpath)))
    needs = [(add(file_name), [add(v) for v in versions]) for file_name, versions in (version_needs or {}).items()]
    defs = [add(soname)] + [add(v) for v in version_defs]

    header_size, ph_size = (64, 56) if bits == 64 else (52, 32)
    phnum = 3 if interp else 2
    offset = header_size + phnum * ph_size
    interp_bytes = interp.encode() + b"\0" if interp else b""
    interp_offset = offset
    offset += len(interp_bytes)
    strtab_offset = offset
    offset += len(strings)
    offset += -offset % 8

    verneed = bytearray()
    for index, (file_index, versions) in enumerate(needs):
        last = index == len(needs) - 1
        verneed += struct.pack(order + "HHIII", 1, len(versions), file_index, 16, 0 if last else 16 + 16 * len(versions))
        for aux_index, name in enumerate(versions):
            verneed += struct.pack(order + "IHHII", 0, 0, 2 + aux_index, name, 0 if aux_index == len(versions) - 1 else 16)
    verneed_offset = offset
    offset += len(verneed)
    verdef = bytearray()
    for index, name in enumerate(defs if version_defs else []):
        last = index == len(defs) - 1
        verdef += struct.pack(order + "HHHHIII", 1, 1 if index == 0 else 0, index + 1, 1, 0, 20, 0 if last else 28)
        verdef += struct.pack(order + "II", name, 0)
    verdef_offset = offset
    offset += len(verdef)
    offset += -offset % 8

    dynamic.append((5, strtab_offset))
    dynamic.append((10, len(strings)))
    if needs:
        dynamic += [(0x6FFFFFFE, verneed_offset), (0x6FFFFFFF, len(needs))]
    if version_defs:
        dynamic += [(0x6FFFFFFC, verdef_offset), (0x6FFFFFFD, len(defs))]
    dynamic.append((0, 0))
    entry = order + ("qQ" if bits == 64 else "iI")
    dynamic_bytes = b"".join(struct.pack(entry, tag, value) for tag, value in dynamic)
    dynamic_offset = offset
    total = offset + len(dynamic_bytes)

    def program_header(p_type, p_offset, size):
        if bits == 64:
            return struct.pack(order + "IIQQQQQQ", p_type, 4, p_offset, p_offset, p_offset, size, size, 8)
        return struct.pack(order + "IIIIIIII", p_type, p_offset, p_offset, p_offset, size, size, 4, 4)

    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if endian == "little" else 2, 1, 0]) + bytes(8)
    if bits == 64:
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", 3, machine, 1, 0, header_size, 0, 0, header_size, ph_size, phnum, 64, 0, 0)
    else:
        header = ident + struct.pack(order + "HHIIIIIHHHHHH", 3, machine, 1, 0, header_size, 0, 0, header_size, ph_size, phnum, 40, 0, 0)
    headers = program_header(1, 0, total)
    if interp:
        headers += program_header(3, interp_offset, len(interp_bytes))
    headers += program_header(2, dynamic_offset, len(dynamic_bytes))
    data = bytearray(header + headers + interp_bytes)
    data += strings
    data += bytes(verneed_offset - len(data)) + verneed + verdef
    data += bytes(dynamic_offset - len(data)) + dynamic_bytes
    assert len(data) == total
    return bytes(data)


def write(path, data, mode=0o755):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def host_like(**kwargs):
    """A hand-built ELF for this host's machine and interpreter."""
    options = dict(bits=HOST.bits, endian=HOST.endian, machine=HOST.machine, interp=HOST.interp)
    options.update(kwargs)
    return make_elf(**options)


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("endian", ["little", "big"])
def test_read_elf_hand_built(tmp_path, bits, endian):
    path = write(tmp_path / "beam.smp", make_elf(
        bits=bits, endian=endian, machine=183, interp="/lib/ld-linux-aarch64.so.1",
        needed=["libm.so.6", "libc.so.6"], runpath="$ORIGIN/../lib:/opt/x", rpath="/old",
        version_needs={"libc.so.6": ["GLIBC_2.17", "GLIBC_2.34"], "libm.so.6": ["GLIBC_2.29"]},
        version_defs=["MY_1.0", "MY_2.0"]))
    elf = read_elf(path)
    assert (elf.bits, elf.endian, elf.machine, elf.interp) == (bits, endian, 183, "/lib/ld-linux-aarch64.so.1")
    assert elf.needed == ["libm.so.6", "libc.so.6"]
    assert (elf.runpath, elf.rpath) == (["$ORIGIN/../lib", "/opt/x"], ["/old"])
    assert elf.version_needs == {"libc.so.6": ["GLIBC_2.17", "GLIBC_2.34"], "libm.so.6": ["GLIBC_2.29"]}
    assert elf.version_defs == {"MY_1.0", "MY_2.0"}
    assert libc_kind(elf) == "glibc"


def test_read_elf_static_and_not_elf(tmp_path):
    static = read_elf(write(tmp_path / "static", make_elf()))
    assert (static.interp, static.needed, libc_kind(static)) == (None, [], "none")
    with pytest.raises(OtpReleaseError, match="not an ELF file"):
        read_elf(write(tmp_path / "script", b"#!/bin/sh\necho this is not a binary at all, really\n"))
    with pytest.raises(OtpReleaseError, match="damaged ELF"):
        read_elf(write(tmp_path / "cut", make_elf(needed=["libc.so.6"])[:80]))
    with pytest.raises(OtpReleaseError, match="Cannot read"):
        read_elf(str(tmp_path / "missing"))


def test_read_elf_of_this_python():
    elf = read_elf(os.path.realpath(sys.executable))
    assert elf.bits in (32, 64) and machine_name(elf)
    assert describe_arch(elf).startswith(machine_name(elf) + " (")


@pytest.mark.parametrize("bits, endian, machine, name", [
    (64, "little", 62, "x86_64"), (32, "little", 3, "i386"), (64, "little", 183, "aarch64"),
    (32, "little", 40, "arm"), (64, "little", 243, "riscv64"), (64, "little", 21, "ppc64le"),
    (64, "big", 21, "ppc64"), (64, "big", 22, "s390x"), (64, "little", 9999, "ELF machine 9999"),
])
def test_machine_names(tmp_path, bits, endian, machine, name):
    assert machine_name(read_elf(write(tmp_path / "x", make_elf(bits, endian, machine)))) == name


@pytest.mark.parametrize("interp, kind", [
    ("/lib64/ld-linux-x86-64.so.2", "glibc"), ("/lib/ld-musl-x86_64.so.1", "musl"), ("/lib64/ld64.so.2", "glibc"),
    ("/lib/ld-linux-riscv64-lp64d.so.1", "glibc"), ("/weird/loader", "unknown"),
])
def test_libc_kind(tmp_path, interp, kind):
    assert libc_kind(read_elf(write(tmp_path / "x", make_elf(interp=interp)))) == kind


def test_restart_kind():
    assert restart_kind(parse("[restart_new_emulator, point_of_no_return]")) == "new_emulator"
    assert restart_kind(parse("[point_of_no_return, {load, {m, brutal_purge, brutal_purge}}, restart_emulator]")) == "emulator"
    assert restart_kind(parse("[point_of_no_return, {apply, {m, f, []}}]")) == "none"
    assert restart_kind(["restart_emulator"]) == "none"  # a string, not the atom
    assert restart_kind([Atom("restart_emulator")]) == "emulator"
    assert restart_kind([]) == restart_kind(None) == "none"


def test_erts_vs_running():
    assert erts_vs_running("13.1.5", "13.1.5", "1.0.0", "none")["ok"]
    assert erts_vs_running(None, "13.1.5", None, "none")["ok"]
    changed = erts_vs_running("13.1.5", "13.2", "1.0.0", "new_emulator")
    assert changed["ok"] and "restart_new_emulator" in changed["detail"]
    assert erts_vs_running("13.1.5", "13.2", "1.0.0", "emulator")["ok"]
    refused = erts_vs_running("13.1.5", "13.2", "1.0.0", "none")
    assert refused == {
        "check": "erts_vs_running", "ok": False,
        "detail": refused["detail"],
    }
    assert refused["detail"].startswith(
        "ERTS changes from 13.1.5 to 13.2 but the relup from 1.0.0 does not restart the emulator:")


def build_ld_so_cache(entries):
    strings = bytearray()
    header_size = 48
    table_size = 24 * len(entries)
    packed = []
    for key, value in entries:
        key_offset = header_size + table_size + len(strings)
        strings += key.encode() + b"\0"
        value_offset = header_size + table_size + len(strings)
        strings += value.encode() + b"\0"
        packed.append(struct.pack("=iIIIQ", 0x0303, key_offset, value_offset, 0, 0))
    header = b"glibc-ld.so.cache1.1" + struct.pack("=IIB3xI3I", len(entries), len(strings), 2, 0, 0, 0, 0)
    assert len(header) == header_size
    return header + b"".join(packed) + bytes(strings)


def test_read_ld_so_cache_hand_built(tmp_path):
    path = tmp_path / "ld.so.cache"
    path.write_bytes(build_ld_so_cache([("libz.so.1", "/lib/x/libz.so.1"), ("libz.so.1", "/lib32/libz.so.1"), ("libm.so.6", "/lib/x/libm.so.6")]))
    assert read_ld_so_cache(str(path)) == {"libz.so.1": ["/lib/x/libz.so.1", "/lib32/libz.so.1"], "libm.so.6": ["/lib/x/libm.so.6"]}
    path.write_bytes(b"ld.so-1.7.0" + bytes(20))
    assert read_ld_so_cache(str(path)) is None
    assert read_ld_so_cache(str(tmp_path / "missing")) is None


@pytest.mark.skipif(not os.path.exists("/etc/ld.so.cache"), reason="no glibc loader cache on this host")
def test_host_ld_so_cache_agrees_with_ldconfig():
    parsed = read_ld_so_cache()
    assert parsed
    from_ldconfig = read_ldconfig_output()
    if from_ldconfig:
        assert parsed == from_ldconfig


def test_library_finder_follows_runpath_origin_and_skips_other_machines(tmp_path):
    other_machine = 183 if HOST.machine != 183 else 62
    write(tmp_path / "root/lib/app-1/priv/lib/libdep.so.1", host_like(interp=None))
    write(tmp_path / "other/libdep.so.1", make_elf(HOST.bits, HOST.endian, other_machine))
    nif = write(tmp_path / "root/lib/app-1/priv/nif.so", host_like(interp=None, needed=["libdep.so.1"], runpath=str(tmp_path / "other") + ":$ORIGIN/lib"))
    finder = LibraryFinder()
    elf = finder.elf(nif)
    assert finder.find("libdep.so.1", elf) == str(tmp_path / "root/lib/app-1/priv/lib/libdep.so.1")
    assert finder.find("libnothing-here.so.9", elf) is None


def test_library_finder_uses_ld_library_path(tmp_path, monkeypatch):
    write(tmp_path / "extra/libextra.so.2", host_like(interp=None))
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path / "extra"))
    nif = write(tmp_path / "nif.so", host_like(interp=None, needed=["libextra.so.2"]))
    finder = LibraryFinder()
    assert finder.find("libextra.so.2", finder.elf(nif)) == str(tmp_path / "extra/libextra.so.2")


# ---- a synthetic release root ------------------------------------------------------------------------

REL = '{release,{"kvstore","1.0.0"},{erts,"%s"},[{kernel,"8.5.3"},{kvstore,"1.0.0"}]}.\n'


def synthetic_root(tmp_path, erts="13.1.5", beam=None, nif=None, binaries=("erlexec", "epmd", "erl_call")):
    root = tmp_path / "root"
    (root / "releases/1.0.0").mkdir(parents=True)
    (root / "releases/1.0.0/kvstore.rel").write_text(REL % erts)
    beam = beam if beam is not None else host_like(needed=HOST_LIBC) + b"(BEAM) emulator version " + erts.encode() + b"\0"
    write(root / "erts-{0}/bin/beam.smp".format(erts), beam)
    for name in binaries:
        write(root / "erts-{0}/bin/{1}".format(erts, name), b"\x7fELF")
    if nif is not None:
        write(root / "lib/kvstore-1.0.0/priv/kvstore_nif.so", nif)
    return root


def by_check(results):
    return {result["check"]: result for result in results}


def test_synthetic_root_passes(tmp_path):
    root = synthetic_root(tmp_path, nif=host_like(interp=None, needed=HOST_LIBC))
    results = check_release(str(root), "1.0.0")
    assert [r["check"] for r in results] == ["erts_bundled", "erts_matches_rel", "binaries", "elf_arch", "libc", "shared_libraries"]
    assert all(r["ok"] for r in results), results
    assert "1 NIF/driver library" in by_check(results)["elf_arch"]["detail"]


def test_not_unpacked(tmp_path):
    with pytest.raises(OtpReleaseError, match="Version 9.9.9 is not unpacked"):
        check_release(str(tmp_path), "9.9.9")
    with pytest.raises(OtpReleaseError, match="Release other 9.9.9 is not unpacked"):
        check_release(str(tmp_path), "9.9.9", "other")


def test_erts_not_bundled(tmp_path):
    root = synthetic_root(tmp_path, erts="13.1.5")
    (root / "releases/1.0.0/kvstore.rel").write_text(REL % "13.2")
    results = by_check(check_release(str(root), "1.0.0"))
    assert not results["erts_bundled"]["ok"]
    assert "needs ERTS 13.2 but there is no erts-13.2/ (found: erts-13.1.5)" in results["erts_bundled"]["detail"]
    assert results["elf_arch"]["detail"].startswith("Not checked")
    assert not any(r["ok"] for r in results.values() if r["check"] != "shared_libraries")


def test_erts_directory_holding_another_erts(tmp_path):
    root = synthetic_root(tmp_path, beam=host_like() + b"(BEAM) emulator version 13.1.4\0")
    result = check_erts_matches_rel(str(root), "13.1.5")
    assert not result["ok"] and "beam.smp is ERTS 13.1.4 but the .rel and the directory name say 13.1.5" in result["detail"]
    assert check_erts_bundled(str(root), "13.1.5")["ok"]


def test_binaries(tmp_path):
    root = synthetic_root(tmp_path, binaries=("erlexec", "epmd"))
    (root / "erts-13.1.5/bin/epmd").chmod(0o644)
    result = check_binaries(str(root), "13.1.5")
    assert not result["ok"]
    assert "erts-13.1.5/bin lacks erl_call; epmd not executable" in result["detail"]


def test_erl_call_is_not_required_before_erts_11(tmp_path):
    root = synthetic_root(tmp_path, erts="10.7", binaries=("erlexec", "epmd"))
    assert check_binaries(str(root), "10.7")["ok"]


def patched_copy(source, destination, offset, new_bytes):
    data = bytearray(open(source, "rb").read())
    data[offset:offset + len(new_bytes)] = new_bytes
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(bytes(data))
    destination.chmod(0o755)
    return str(destination)


def test_real_elf_with_another_machine(tmp_path):
    other, word = (183, "aarch64") if HOST.machine != 183 else (62, "x86_64")
    order = "<" if HOST.endian == "little" else ">"
    beam = patched_copy(HOST.path, tmp_path / "erts-13.1.5/bin/beam.smp", 18, struct.pack(order + "H", other))
    result = check_elf_arch(str(tmp_path), beam, [], HOST)
    assert not result["ok"]
    assert result["detail"].startswith("erts-13.1.5/bin/beam.smp is {0} ({1}-bit".format(word, HOST.bits))
    assert "but this host is {0}".format(describe_arch(HOST)) in result["detail"]


def test_nif_of_another_machine_or_not_elf(tmp_path):
    root = synthetic_root(tmp_path, nif=make_elf(32 if HOST.bits == 64 else 64, HOST.endian, HOST.machine))
    write(root / "lib/kvstore-1.0.0/priv/text.so", b"not a library, just some text in a file")
    result = by_check(check_release(str(root), "1.0.0"))["elf_arch"]
    assert not result["ok"]
    assert "lib/kvstore-1.0.0/priv/kvstore_nif.so is {0}".format(machine_name(HOST)) in result["detail"]
    assert "lib/kvstore-1.0.0/priv/text.so is not an ELF file" in result["detail"]


def test_real_elf_with_a_missing_library(tmp_path):
    victim = next(name for name in HOST.needed if len(name) > 4)
    renamed = "libQ" + victim[4:]
    data = open(HOST.path, "rb").read()
    offset = data.index(b"\0" + victim.encode() + b"\0") + 1
    beam = patched_copy(HOST.path, tmp_path / "erts-13.1.5/bin/beam.smp", offset, renamed.encode())
    assert renamed in read_elf(beam).needed
    result = check_shared_libraries(str(tmp_path), beam, [])
    assert not result["ok"]
    assert "{0} needed by erts-13.1.5/bin/beam.smp is not found".format(renamed) in result["detail"]


@pytest.mark.skipif(libc_kind(HOST) != "glibc", reason="host is not glibc")
def test_musl_beam_on_glibc_host(tmp_path):
    beam = write(tmp_path / "beam.smp", host_like(interp="/lib/ld-musl-x86_64.so.1"))
    result = check_libc(str(tmp_path), beam, HOST)
    assert not result["ok"] and "built for musl (interpreter /lib/ld-musl-x86_64.so.1) but this host uses glibc" in result["detail"]


@pytest.mark.skipif(libc_kind(HOST) != "glibc", reason="host is not glibc")
def test_glibc_too_new(tmp_path):
    libc = next(name for name in HOST.needed if name.startswith("libc.so"))
    beam = write(tmp_path / "beam.smp", host_like(needed=[libc], version_needs={libc: ["GLIBC_2.2.5", "GLIBC_99.1"]}))
    result = check_libc(str(tmp_path), beam, HOST)
    assert not result["ok"] and "needs glibc 99.1 or newer but this host has glibc" in result["detail"]
    result = check_shared_libraries(str(tmp_path), beam, [])
    assert not result["ok"] and "beam.smp needs GLIBC_99.1 of {0}, which".format(libc) in result["detail"]


def test_missing_interpreter(tmp_path):
    beam = write(tmp_path / "beam.smp", host_like(interp=os.path.join(os.path.dirname(HOST.interp or "/lib/ld-linux-x.so"), "ld-linux-nowhere.so.2")))
    if libc_kind(HOST) == "glibc":
        result = check_libc(str(tmp_path), beam, HOST)
        assert not result["ok"] and "which this host lacks" in result["detail"]


def test_static_beam(tmp_path):
    beam = write(tmp_path / "beam.smp", make_elf(HOST.bits, HOST.endian, HOST.machine))
    assert check_libc(str(tmp_path), beam, HOST) == {"check": "libc", "ok": True, "detail": "beam.smp is statically linked."}


# ---- tarballs -----------------------------------------------------------------------------------------

def tarball(path, files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue(), 1))
    return str(path)


def test_verify_tarball_synthetic(tmp_path, monkeypatch):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    beam = host_like(needed=HOST_LIBC) + b"(BEAM) emulator version 13.1.5\0"
    files = [
        ("releases/1.0.0/kvstore.rel", (REL % "13.1.5").encode(), 0o644),
        ("erts-13.1.5/bin/beam.smp", beam, 0o755),
        ("erts-13.1.5/bin/erlexec", b"x", 0o755),
        ("erts-13.1.5/bin/epmd", b"x", 0o755),
        ("erts-13.1.5/bin/erl_call", b"x", 0o755),
        ("lib/kvstore-1.0.0/priv/kvstore_nif.so", host_like(interp=None, needed=["libmissing-for-test.so.3"]), 0o755),
        ("lib/kvstore-1.0.0/priv/big.dat", b"\0" * 100000, 0o644),
    ]
    results = by_check(verify_tarball(tarball(tmp_path / "kvstore-1.0.0.tar.gz", files)))
    assert [name for name, result in results.items() if not result["ok"]] == ["shared_libraries"]
    assert results["shared_libraries"]["detail"].startswith(
        "libmissing-for-test.so.3 needed by lib/kvstore-1.0.0/priv/kvstore_nif.so is not found")
    assert os.listdir(str(private_tmp)) == []  # the extracted parts are gone


def test_verify_tarball_without_erts(tmp_path):
    path = tarball(tmp_path / "t.tar.gz", [("releases/1.0.0/kvstore.rel", (REL % "13.1.5").encode(), 0o644)])
    results = by_check(verify_tarball(path))
    assert not results["erts_bundled"]["ok"] and "no erts-* at all" in results["erts_bundled"]["detail"]


def test_verify_tarball_refuses_unsafe_or_corrupt(tmp_path):
    path = tarball(tmp_path / "t.tar.gz", [("../x", b"x", 0o644)])
    with pytest.raises(OtpReleaseError, match="leads outside the release root"):
        verify_tarball(path)
    data = open(path, "rb").read()
    (tmp_path / "cut.tar.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(OtpReleaseError, match="truncated or corrupt"):
        verify_tarball(str(tmp_path / "cut.tar.gz"))


# ---- the host's own Erlang ------------------------------------------------------------------------------

def system_erts():
    found = sorted(glob.glob(os.path.join(SYSTEM_ERLANG, "erts-*")))
    return os.path.basename(found[-1])[len("erts-"):]


def sqlite_driver():
    found = glob.glob(os.path.join(SYSTEM_ERLANG, "lib/p1_sqlite3-*/priv/sqlite3_drv.so"))
    return found[0] if found else None


@needs_erlang
def test_system_erlang_passes():
    release = os.path.basename(glob.glob(os.path.join(SYSTEM_ERLANG, "releases/*/start_sasl.rel"))[0][:-len("/start_sasl.rel")])
    results = check_release(SYSTEM_ERLANG, release, "start_sasl")
    assert all(r["ok"] for r in results), results
    assert "is ERTS {0}".format(system_erts()) in by_check(results)["erts_matches_rel"]["detail"]


@needs_erlang
def test_system_erlang_with_the_sqlite_driver(tmp_path):
    driver = sqlite_driver()
    if driver is None:
        pytest.skip("erlang-p1-sqlite3 is not installed")
    erts = system_erts()
    root = tmp_path / "root"
    (root / "releases/1.0.0").mkdir(parents=True)
    (root / "lib").mkdir()
    os.symlink(os.path.join(SYSTEM_ERLANG, "erts-" + erts), str(root / ("erts-" + erts)))
    os.symlink(os.path.dirname(os.path.dirname(driver)), str(root / "lib/sqlite3-1.0"))
    (root / "releases/1.0.0/demo.rel").write_text('{release,{"demo","1.0.0"},{erts,"%s"},[{sqlite3,"1.0"}]}.' % erts)
    results = by_check(check_release(str(root), "1.0.0"))
    assert all(r["ok"] for r in results.values()), results
    assert "beam.smp and 1 NIF/driver library" in results["shared_libraries"]["detail"]
    finder = LibraryFinder()
    assert finder.find("libsqlite3.so.0", finder.elf(driver))

    # the same driver asking for a library this host does not have (same length name)
    broken = tmp_path / "broken/priv/sqlite3_drv.so"
    data = open(driver, "rb").read()
    patched_copy(driver, broken, data.index(b"\0libsqlite3.so.0\0") + 1, b"libsqliteX.so.0")
    os.unlink(str(root / "lib/sqlite3-1.0"))
    os.symlink(str(tmp_path / "broken"), str(root / "lib/sqlite3-1.0"))
    result = by_check(check_release(str(root), "1.0.0"))["shared_libraries"]
    assert not result["ok"]
    assert result["detail"].startswith("libsqliteX.so.0 needed by lib/sqlite3-1.0/priv/sqlite3_drv.so is not found")


@needs_erlang
def test_verify_tarball_with_system_erts(tmp_path):
    erts = system_erts()
    bin_dir = os.path.join(SYSTEM_ERLANG, "erts-" + erts, "bin")
    files = [("releases/1.0.0/demo.rel", ('{release,{"demo","1.0.0"},{erts,"%s"},[{kernel,"1"}]}.' % erts).encode(), 0o644)]
    for name in ("beam.smp", "erlexec", "epmd", "erl_call"):
        files.append(("erts-{0}/bin/{1}".format(erts, name), open(os.path.join(bin_dir, name), "rb").read(), 0o755))
    results = verify_tarball(tarball(tmp_path / "demo-1.0.0.tar.gz", files))
    assert all(r["ok"] for r in results), results

    other, word = (183, "aarch64") if HOST.machine != 183 else (62, "x86_64")
    beam = bytearray(files[1][1])
    beam[18:20] = struct.pack("<H" if HOST.endian == "little" else ">H", other)
    files[1] = (files[1][0], bytes(beam), 0o755)
    results = by_check(verify_tarball(tarball(tmp_path / "demo-1.0.0.tar.gz", files)))
    assert not results["elf_arch"]["ok"] and " is {0} (".format(word) in results["elf_arch"]["detail"]
