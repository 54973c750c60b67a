"""Distillery-shaped tarballs, made from the kvstore relx tarballs by what is known of Distillery 2.1.1's output
(no Distillery code runs here):

- its archiver adds releases/<vsn>/{sys.config, start.boot, <name>.rel, relup} and the
  releases/<vsn>/hooks/*.d directories again after systools put them in: 11-12 member names appear
  twice, as byte-identical copies;
- var/start_erl.data, and a bin/<name> that boots what $RELEASE_MUTABLE_DIR/start_erl.data names
  (default <root>/var);
- releases/<vsn>/vm.args with a long name on 127.0.0.1 and a 64-character cookie full of shell
  metacharacters (no releases/COOKIE).

Also two faulty variants of 2.0.0: a duplicate whose content differs, and one whose type differs.
"""

import io
import secrets
import tarfile

NAME = "kvstore"
HOOKS = ["pre_configure.d", "post_configure.d", "pre_start.d", "post_start.d",
         "pre_stop.d", "post_stop.d", "pre_upgrade.d", "post_upgrade.d"]
DUPLICATED_FILES = ["sys.config", "start.boot", NAME + ".rel", "relup"]
RELX_ONLY = ["bin/nodetool", "bin/install_upgrade.escript", "bin/no_dot_erlang.boot"]
# name in the world: (relx world tarball it is made from, fault or None)
TARBALLS = {
    "distillery-1.0.0": ("1.0.0", None),
    "distillery-2.0.0": ("2.0.0", None),
    "distillery-2.0.0-differing": ("2.0.0", "differing"),
    "distillery-2.0.0-retyped": ("2.0.0", "retyped"),
}
# Characters a shell would act on; every cookie holds each of them.
SHELL_METACHARACTERS = "$`;&|*?()<>![]{}~^%="
COOKIE_LENGTH = 64

START_SCRIPT = """#!/bin/sh
# Start script of a Distillery-shaped release (made by the test world; Distillery 2.x boots the same
# way): it boots the release that $RELEASE_MUTABLE_DIR/start_erl.data names (default <root>/var),
# copied from releases/start_erl.data on the first start, with that release's vm.args.
# The VM reads its cookie from $HOME/.erlang.cookie: the runtime copy of vm.args leaves the -setcookie
# line out, so that the cookie never shows in the VM's argv.
set -e
RELEASE_ROOT_DIR="$(CDPATH='' cd "$(dirname "$0")/.." && pwd -P)"
RELEASE_MUTABLE_DIR="${RELEASE_MUTABLE_DIR:-$RELEASE_ROOT_DIR/var}"
START_ERL_DATA="${START_ERL_DATA:-$RELEASE_MUTABLE_DIR/start_erl.data}"
export RELEASE_ROOT_DIR RELEASE_MUTABLE_DIR START_ERL_DATA
mkdir -p "$RELEASE_MUTABLE_DIR"
[ -f "$START_ERL_DATA" ] || cp "$RELEASE_ROOT_DIR/releases/start_erl.data" "$START_ERL_DATA"
START_ERL="$(cat "$START_ERL_DATA")"
ERTS_VSN="${START_ERL%% *}"
RELEASE_VSN="${START_ERL##* }"
RELEASE_DIR="$RELEASE_ROOT_DIR/releases/$RELEASE_VSN"
grep -v '^-setcookie' "$RELEASE_DIR/vm.args" > "$RELEASE_MUTABLE_DIR/vm.args"
ROOTDIR="$RELEASE_ROOT_DIR"
BINDIR="$RELEASE_ROOT_DIR/erts-$ERTS_VSN/bin"
EMU=beam
PROGNAME=@NAME@
export ROOTDIR BINDIR EMU PROGNAME
case "$1" in
    console|foreground)
        exec "$BINDIR/erlexec" -boot "$RELEASE_DIR/start" -mode embedded \\
            -boot_var ERTS_LIB_DIR "$RELEASE_ROOT_DIR/lib" -config "$RELEASE_DIR/sys.config" \\
            -args_file "$RELEASE_MUTABLE_DIR/vm.args" ;;
    version)
        echo "@NAME@ $RELEASE_VSN" ;;
    *)
        echo "usage: $0 console|foreground|version" >&2
        exit 1 ;;
esac
""".replace("@NAME@", NAME)


def new_cookie():
    """64 random printable characters holding every shell metacharacter; no quote, backslash, # or blank,
    which vm.args would read as syntax."""
    others = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "\"'\\#" + SHELL_METACHARACTERS]
    chars = list(SHELL_METACHARACTERS)
    chars += [secrets.choice(others) for _index in range(COOKIE_LENGTH - len(chars))]
    for index in range(len(chars) - 1, 0, -1):
        swap = secrets.randbelow(index + 1)
        chars[index], chars[swap] = chars[swap], chars[index]
    return "".join(chars)


def vm_args(node, cookie):
    return ("## Distillery's default: a long name on 127.0.0.1\n-name {0}\n-setcookie {1}\n"
            "-kernel inet_dist_use_interface {{127,0,0,1}}\n").format(node, cookie).encode()


def build_into(cache, relx_tarballs):
    """Write every tarball of TARBALLS into cache; relx_tarballs: {relx world name: path}."""
    node, cookie = NAME + "@127.0.0.1", new_cookie()
    for name, (relx_name, fault) in TARBALLS.items():
        make(relx_tarballs[relx_name], cache / tarball_name(name), node, cookie, fault)


def tarball_name(name):
    return "{0}-{1}.tar.gz".format(NAME, name)


def make(relx_tarball, target, node, cookie, fault=None):
    with tarfile.open(relx_tarball, "r:gz") as source:
        members = [(info, source.extractfile(info).read() if info.isfile() else None) for info in source]
    version = next(info.name.split("/")[1] for info, _data in members
                   if info.name.startswith("releases/") and info.name.endswith("/" + NAME + ".rel")
                   and info.name.count("/") == 2)
    release_dir = "releases/{0}/".format(version)
    start_erl_data = next(data for info, data in members if info.name == "releases/start_erl.data")
    template = next(info for info, _data in members if info.name == release_dir + NAME + ".rel")
    kept = []
    for info, data in members:
        if info.name in RELX_ONLY or info.name.startswith("bin/{0}-".format(NAME)):
            continue
        if info.name == "bin/" + NAME:
            data = START_SCRIPT.encode()
        elif info.name == release_dir + "vm.args":
            data = vm_args(node, cookie)
        kept.append((info, data))
    added = [entry(template, "var", None), entry(template, "var/start_erl.data", start_erl_data),
             entry(template, release_dir + "hooks", None)]
    added += [entry(template, release_dir + "hooks/" + hook, None) for hook in HOOKS]
    # Distillery's archiver adds these again after systools: the same bytes and modes, a second time
    names = set(info.name for info, _data in kept)
    again = [(info, data) for info, data in kept + added
             if info.name in names and info.name[len(release_dir):] in DUPLICATED_FILES]
    again += [(info, data) for info, data in added if "/hooks/" in info.name]
    if fault == "differing":
        again = [(info, data + b"%% differs\n" if info.name.endswith("sys.config") else data) for info, data in again]
    elif fault == "retyped":
        again = [entry(info, info.name, b"#\n") if info.name.endswith("/pre_start.d") else (info, data)
                 for info, data in again]
    write(target, kept + added + again)


def entry(template, name, data):
    """A member like template (owner, mtime), a directory when data is None; returns (TarInfo, data)."""
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = (template.mtime, template.uid, template.gid,
                                                              template.uname, template.gname)
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.mode = 0o644
    return info, data


def write(target, members):
    with tarfile.open(target, "w:gz", compresslevel=6) as dest:
        for info, data in members:
            info = _copy(info)
            if data is not None:
                info.size = len(data)
            dest.addfile(info, io.BytesIO(data) if data is not None else None)


def _copy(info):
    clone = tarfile.TarInfo(info.name)
    for field in ("mode", "uid", "gid", "mtime", "type", "linkname", "uname", "gname", "size"):
        setattr(clone, field, getattr(info, field))
    return clone


def retarget(tarball, target, node, cookie):
    """target: tarball with every releases/<vsn>/vm.args naming node and cookie (one node per test)."""
    with tarfile.open(tarball, "r:gz") as source:
        members = [(info, source.extractfile(info).read() if info.isfile() else None) for info in source]
    write(target, [(info, vm_args(node, cookie) if info.name.endswith("/vm.args") else data) for info, data in members])
