"""Build the kvstore test world: release tarballs of the sample app, good and faulty.

Run as a script (prints the tarball paths as JSON) or import and call build_world().
Tarballs are cached in ${OTP_RELEASE_WORLD_CACHE:-~/.cache/otp-release-world}/<key>/, where
<key> is a hash of every input file under tests/world/; a finished build writes `done` last.
The build itself runs with Debian's rebar3 (relx) in a temporary directory outside the repo.
"""

import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

WORLD = Path(__file__).resolve().parent
sys.path.insert(0, str(WORLD))

import build_distillery  # noqa: E402
import build_mix  # noqa: E402

APP_SOURCES = WORLD / "kvstore"
# Debian's erlang-p1-sqlite3: its application is named sqlite3 but its directory is not
# sqlite3-<vsn>, so relx only finds it through a link with the right name.
SQLITE3_DIR = Path("/usr/lib/erlang/lib/p1_sqlite3-1.1.14")
SQLITE3_LINK = "sqlite3-1.1.14"

# name, version, source folders under kvstore/ (first one holding a file wins; common/ is
# always last), version the relup goes up from and down to, whether ERTS is bundled.
BUILDS = [
    ("1.0.0", "1.0.0", ["1.0.0"], None, True),
    ("1.1.0", "1.1.0", ["1.1.0", "1.0.0"], "1.0.0", True),
    ("1.2.0", "1.2.0", ["1.2.0", "1.0.0"], "1.0.0", True),
    ("2.0.0", "2.0.0", ["2.0.0"], "1.0.0", True),
    ("3.0.0", "3.0.0", ["3.0.0", "2.0.0"], "2.0.0", True),
    ("2.0.0-noerts", "2.0.0", ["2.0.0"], "1.0.0", False),
    # Appups that a relup review must catch (the 2.0.0-* versions sort between 1.0.0 and 2.0.0).
    ("2.0.0-forgets", "2.0.0-forgets", ["2.0.0-forgets", "2.0.0"], "1.0.0", True),
    ("2.0.0-unadded", "2.0.0-unadded", ["2.0.0-unadded", "2.0.0"], "1.0.0", True),
    ("2.0.0-supervisor", "2.0.0-supervisor", ["2.0.0-supervisor", "1.0.0"], "1.0.0", True),
    ("2.0.0-nocodechange", "2.0.0-nocodechange", ["2.0.0-nocodechange", "1.0.0"], "1.0.0", True),
    ("2.0.0-ticker", "2.0.0-ticker", ["2.0.0-ticker", "1.0.0"], "1.0.0", True),
    ("2.0.0-ticker-purge", "2.0.0-ticker-purge", ["2.0.0-ticker-purge", "2.0.0-ticker", "1.0.0"],
     "2.0.0-ticker", True),
    # A version whose kvstore application fails to start, so a node booting it dies; no relup (a restart).
    ("2.0.0-crashboot", "2.0.0-crashboot", ["2.0.0"], None, True),
]

# Changes made to a version's laid-out sources: (file, text that occurs once, replacement).
EDITS = {
    "2.0.0-supervisor": [("src/kvstore_sup.erl", "intensity => 5", "intensity => 10")],
    "2.0.0-nocodechange": [
        ("src/kv_server.erl", "terminate/2, code_change/3]", "terminate/2]"),
        ("src/kv_server.erl",
         "%% Nothing older than 1.0.0 exists; downgrades from 2.0.0 convert in 2.0.0's code.\n"
         "code_change(_OldVsn, State, _Extra) ->\n    {ok, State}.\n\n", ""),
    ],
    "2.0.0-ticker-purge": [("src/kv_ticker.erl", "loop(Count + 1)", "loop(Count + 2)")],
    "2.0.0-crashboot": [("src/kvstore_app.erl", "    kvstore_sup:start_link().", "    {error, crash_on_boot}.")],
}

REBAR_CONFIG = """\
{erl_opts, [debug_info]}.
{relx, [{release, {kvstore, "@VERSION@"}, [kvstore, sasl]},
        {lib_dirs, ["otp_libs"]},
        {dev_mode, false},
        {include_erts, @INCLUDE_ERTS@},
        {include_src, false},
        {sys_config, "config/sys.config"},
        {vm_args, "config/vm.args"},
        {extended_start_script, true}]}.
"""


def cache_root():
    default = Path.home() / ".cache" / "otp-release-world"
    return Path(os.environ.get("OTP_RELEASE_WORLD_CACHE") or default)


def input_files():
    return sorted(
        path for path in WORLD.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def source_key():
    digest = hashlib.sha256()
    for path in input_files():
        digest.update(str(path.relative_to(WORLD)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def tarball_names():
    names = {build[0]: "kvstore-{0}.tar.gz".format(build[0]) for build in BUILDS}
    for fault in FAULTS:
        names[fault] = "kvstore-2.0.0-{0}.tar.gz".format(fault)
    names.update(build_mix.TARBALLS)
    names.update((name, build_distillery.tarball_name(name)) for name in build_distillery.TARBALLS)
    return names


def build_world():
    """Return {short name: tarball path}, building into the cache only when it is not complete."""
    cache = cache_root() / source_key()
    paths = {name: str(cache / file_name) for name, file_name in tarball_names().items()}
    if (cache / "done").exists():
        return paths
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(str(cache) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same key
        if not (cache / "done").exists():
            shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir()
            build_into(cache)
            (cache / "done").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    return paths


def build_into(cache):
    work = Path(tempfile.mkdtemp(prefix="kvstore-world-"))
    try:
        (work / "otp_libs").mkdir()
        (work / "otp_libs" / SQLITE3_LINK).symlink_to(SQLITE3_DIR)
        shutil.copytree(APP_SOURCES / "common" / "config", work / "config")
        rel_dir = work / "_build" / "default" / "rel" / "kvstore"
        for name, version, folders, relup_from, include_erts in BUILDS:
            build_release(work, version, folders, relup_from, include_erts)
            if relup_from:
                check_relup(rel_dir / "releases" / version / "relup", relup_from, name == "1.2.0")
            shutil.copy(rel_dir / "kvstore-{0}.tar.gz".format(version), cache / tarball_names()[name])
        good = cache / tarball_names()["2.0.0"]
        for fault, make in FAULTS.items():
            make(good, cache / tarball_names()[fault])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timed("Distillery-shaped", build_distillery.build_into, cache,
          {name: cache / tarball_names()[name] for name in ("1.0.0", "2.0.0")})
    timed("mix release", build_mix.build_into, cache)


def timed(what, build, *args):
    started = time.monotonic()
    build(*args)
    print("{0} builds took {1:.1f} s".format(what, time.monotonic() - started), file=sys.stderr)


def build_release(work, version, folders, relup_from, include_erts):
    for stale in ("src", "ebin", "_build/default/lib/kvstore", "_build/default/rel/kvstore/bin"):
        shutil.rmtree(work / stale, ignore_errors=True)
    for old_tarball in work.glob("_build/default/rel/kvstore/*.tar.gz"):
        old_tarball.unlink()
    lay_out_sources(work, version, folders)
    config = REBAR_CONFIG.replace("@VERSION@", version)
    config = config.replace("@INCLUDE_ERTS@", "true" if include_erts else "false")
    (work / "rebar.config").write_text(config)
    if relup_from:
        rebar3(work, "do", "relup", "-n", "kvstore", "-v", version, "-u", relup_from + ",", "tar")
    else:
        rebar3(work, "tar")


def lay_out_sources(work, version, folders):
    """Copy src/*, ebin/*.appup from the version's folders, then common/; a file borrowed
    from another version's folder gets this version's vsn. Then apply the version's EDITS."""
    for folder in folders + ["common"]:
        for sub in ("src", "ebin"):
            for source in sorted((APP_SOURCES / folder / sub).glob("*")):
                target = work / sub / source.name
                if target.exists():
                    continue
                text = source.read_text()
                if folder not in (version, "common"):
                    text = text.replace('-vsn("{0}")'.format(folder), '-vsn("{0}")'.format(version))
                    text = text.replace('{{vsn, "{0}"}}'.format(folder), '{{vsn, "{0}"}}'.format(version))
                target.parent.mkdir(exist_ok=True)
                target.write_text(text)
    for file_name, old, new in EDITS.get(version, []):
        target = work / file_name
        text = target.read_text()
        if text.count(old) != 1:
            raise RuntimeError("{0}: expected one {1!r} in {2}".format(version, old, file_name))
        target.write_text(text.replace(old, new))


def rebar3(work, *args):
    env = dict(os.environ, REBAR_COLOR="none", LANG="C")
    result = subprocess.run(
        ["/usr/bin/rebar3"] + list(args), cwd=work, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError("rebar3 {0} failed in {1}:\n{2}".format(" ".join(args), work, result.stdout[-4000:]))


def check_relup(relup, other_version, ends_with_restart):
    """The relup must go up from and down to other_version only; for 1.2.0 both scripts must
    end with restart_emulator."""
    check = (
        '{ok, [{_, Up, Down}]} = file:consult("' + str(relup) + '"),'
        'Ends = [lists:last(Script) || {_, _, Script} <- Up ++ Down],'
        'io:format("~0p", [{[V || {V, _, _} <- Up], [V || {V, _, _} <- Down], Ends}]),'
        "halt()."
    )
    output = subprocess.run(
        ["/usr/bin/erl", "-noshell", "-boot", "start_clean", "-eval", check],
        stdout=subprocess.PIPE, text=True, check=True,
    ).stdout
    versions = '["{0}"],["{0}"]'.format(other_version)
    if versions not in output:
        raise RuntimeError("{0}: expected paths only from/to {1}, got {2}".format(relup, other_version, output))
    if ends_with_restart and not output.endswith("[restart_emulator,restart_emulator]}"):
        raise RuntimeError("{0}: expected both scripts to end with restart_emulator, got {1}".format(relup, output))


# Fault tarballs, each made from the good 2.0.0 tarball.

def copy_tarball(good, target, change=None, extra=()):
    """Write target as good's members, each passed through change(info, data) -> data,
    followed by the extra (TarInfo, data) pairs."""
    with tarfile.open(good, "r:gz") as source, tarfile.open(target, "w:gz", compresslevel=1) as dest:
        for info in source:
            data = source.extractfile(info).read() if info.isfile() else None
            if data is not None and change:
                data = change(info, data)
                info.size = len(data)
            dest.addfile(info, io.BytesIO(data) if data is not None else None)
        for info, data in extra:
            dest.addfile(info, io.BytesIO(data) if data is not None else None)


def member(name, data=None, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    info.mtime = int(time.time())
    info.size = len(data) if data is not None else 0
    return info, data


def make_truncated(good, target):
    data = good.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def make_dotdot(good, target):
    copy_tarball(good, target, extra=[member("../evil", b"outside the root\n")])


def make_absolute(good, target):
    copy_tarball(good, target, extra=[member("/tmp/evil", b"outside the root\n")])


def make_symlink_out(good, target):
    copy_tarball(good, target, extra=[member("lib/x", kind=tarfile.SYMTYPE, link="/etc")])


def make_hardlink_out(good, target):
    copy_tarball(good, target, extra=[member("lib/y", kind=tarfile.LNKTYPE, link="../../etc/passwd")])


ELF_MACHINE_X86_64 = 62
ELF_MACHINE_AARCH64 = 183


def make_foreign_erts(good, target):
    """beam.smp's ELF e_machine set to a machine this host is not."""
    def change(info, data):
        if not (info.name.startswith("erts-") and info.name.endswith("/bin/beam.smp")):
            return data
        little = data[5] == 1  # EI_DATA: 1 little-endian, 2 big-endian
        machine = int.from_bytes(data[18:20], "little" if little else "big")
        foreign = ELF_MACHINE_X86_64 if machine == ELF_MACHINE_AARCH64 else ELF_MACHINE_AARCH64
        return data[:18] + foreign.to_bytes(2, "little" if little else "big") + data[20:]
    copy_tarball(good, target, change)


def make_missing_lib(good, target):
    """sqlite3's driver NEEDs libsqliteX.so.0, which exists nowhere. The new name has the
    length of libsqlite3.so.0, so every offset in the ELF file holds."""
    def change(info, data):
        if not (info.name.startswith("lib/sqlite3-") and info.name.endswith("/priv/sqlite3_drv.so")):
            return data
        needed, missing = b"\0libsqlite3.so.0\0", b"\0libsqliteX.so.0\0"
        if data.count(needed) != 1:
            raise RuntimeError("{0}: expected one {1!r}".format(info.name, needed))
        return data.replace(needed, missing)
    copy_tarball(good, target, change)


FAULTS = {
    "truncated": make_truncated,
    "dotdot": make_dotdot,
    "absolute": make_absolute,
    "symlink-out": make_symlink_out,
    "hardlink-out": make_hardlink_out,
    "foreign-erts": make_foreign_erts,
    "missing-lib": make_missing_lib,
}


def main():
    started = time.monotonic()
    paths = build_world()
    print(json.dumps(paths, indent=2))
    print("took {0:.2f} s".format(time.monotonic() - started), file=sys.stderr)


if __name__ == "__main__":
    main()
