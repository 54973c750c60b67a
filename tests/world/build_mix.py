"""Build the kvex world: an Elixir app released by Debian's `mix release` (include_erts, tar step).

0.1.0 and 0.2.0 are plain mix builds. Mix makes no appup or relup, so this builder does what a mix
user does: puts kvex.appup into the 0.2.0 build's ebin before `mix release`, makes the relup with
systools:make_relup from both builds' .rel files, and packs the 0.2.0 tarball again with
releases/0.2.0/relup in it. No hex packages and no network: the app has no dependencies.
"""

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

SOURCES = Path(__file__).resolve().parent / "kvex"
NAME = "kvex"
VERSIONS = ["0.1.0", "0.2.0"]
APPUP_FROM = {"0.2.0": "0.1.0"}
TARBALLS = {"mix-" + version: "{0}-{1}.tar.gz".format(NAME, version) for version in VERSIONS}
SYSTEM_ERL = "/usr/bin/erl"


def build_into(cache):
    """Write every tarball of TARBALLS into cache."""
    work = Path(tempfile.mkdtemp(prefix="kvex-world-"))
    try:
        built = {}
        for version in VERSIONS:
            built[version] = mix_release(work / version, version)
        for version, old in APPUP_FROM.items():
            make_relup(built[version], built[old], version, old)
            repack_with_relup(work / version / "_build" / "prod" / TARBALLS["mix-" + version],
                              built[version] / "releases" / version / "relup",
                              cache / TARBALLS["mix-" + version], version)
        for version in VERSIONS:
            if version not in APPUP_FROM:
                shutil.copy(work / version / "_build" / "prod" / TARBALLS["mix-" + version],
                            cache / TARBALLS["mix-" + version])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def mix_release(project, version):
    """Lay out the project for version, `mix release` it; return the release directory."""
    (project / "lib").mkdir(parents=True)
    (project / "mix.exs").write_text((SOURCES / "common" / "mix.exs").read_text().replace("@VERSION@", version))
    for folder in ("common", version):
        for source in sorted((SOURCES / folder / "lib").glob("*.ex")):
            shutil.copy(source, project / "lib" / source.name)
    mix(project, "compile")
    appup = SOURCES / version / (NAME + ".appup")
    if appup.exists():
        shutil.copy(appup, project / "_build" / "prod" / "lib" / NAME / "ebin" / appup.name)
    mix(project, "release", "--overwrite")
    return project / "_build" / "prod" / "rel" / NAME


def mix(project, *args):
    home = project / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, MIX_ENV="prod", HOME=str(home), MIX_HOME=str(home / ".mix"), LANG="C.UTF-8")
    result = subprocess.run(["/usr/bin/mix"] + list(args), cwd=project, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError("mix {0} failed in {1}:\n{2}".format(" ".join(args), project, result.stdout[-4000:]))


def make_relup(new_release, old_release, version, old_version):
    """systools:make_relup into releases/<version>/relup of new_release, up from and down to old_version."""
    new_rel = new_release / "releases" / version / NAME
    old_rel = old_release / "releases" / old_version / NAME
    paths = [str(old_release / "lib" / "*" / "ebin"), str(new_release / "lib" / "*" / "ebin")]
    code = ('ok = systools:make_relup("{0}", ["{1}"], ["{1}"], [{{path, {2}}}, {{outdir, "{3}"}}, silent]), '
            'halt().').format(new_rel, old_rel, "[" + ",".join('"{0}"'.format(p) for p in paths) + "]",
                              new_release / "releases" / version)
    # systools replies {ok, Relup, Module, Warnings} with `silent`; anything else is a failure
    code = code.replace("ok = systools", "{ok, _, _, _} = systools")
    result = subprocess.run([SYSTEM_ERL, "-noshell", "-boot", "start_clean", "-eval", code],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, check=False, env=dict(os.environ, ERL_CRASH_DUMP_SECONDS="0"))
    relup = new_release / "releases" / version / "relup"
    if result.returncode != 0 or not relup.exists():
        raise RuntimeError("systools:make_relup failed for {0} <-> {1}:\n{2}".format(version, old_version,
                                                                                     result.stdout[-4000:]))


def repack_with_relup(tarball, relup, target, version):
    """target: tarball's members, with releases/<version>/relup added right after the .rel file."""
    rel_member = "releases/{0}/{1}.rel".format(version, NAME)
    with tarfile.open(tarball, "r:gz") as source, tarfile.open(target, "w:gz", compresslevel=6) as dest:
        names = source.getnames()
        if rel_member not in names or "releases/{0}/relup".format(version) in names:
            raise RuntimeError("{0}: expected {1} and no relup, got {2}".format(tarball, rel_member, names[:20]))
        for info in source:
            dest.addfile(info, source.extractfile(info) if info.isfile() else None)
            if info.name == rel_member:
                relup_info = dest.gettarinfo(str(relup), "releases/{0}/relup".format(version))
                relup_info.uid = relup_info.gid = 0
                relup_info.uname = relup_info.gname = ""
                with open(str(relup), "rb") as data:
                    dest.addfile(relup_info, data)
