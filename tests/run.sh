#!/usr/bin/env bash
# Sets up what the tests need and runs them; the Makefile calls this script.
#
#   tests/run.sh system       Debian packages (Erlang, rebar3, Elixir, sqlite3 for Erlang), installed only when missing
#   tests/run.sh venv         the virtualenv ($VENV, default .venv), rebuilt only when the requirements change
#   tests/run.sh world        build the test world (tests/world)
#   tests/run.sh demo         run tests/demo.sh
#   tests/run.sh units | sanity | lint | docs | changelog | integration
#   tests/run.sh test         units, sanity, lint, docs, changelog, then integration (its pytest summary is the last line)
#
# Environment: VENV (virtualenv path), PYTHON (interpreter to build it with; default: the newest
# Python 3.11+ found on PATH, in /usr/bin, /usr/local/bin or ~/.pyenv/versions).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VENV=${VENV:-$REPO/.venv}
case $VENV in /*) ;; *) VENV=$PWD/$VENV ;; esac

# erl_call and sasl come with erlang-base; rebar3 pulls in erlang-dev and the other tools it needs;
# elixir brings mix, which builds the kvex world with `mix release`. openssh-server, sudo and acl serve
# the SSH test fleet (tests/integration/fleet.py): an sshd of its own on 127.0.0.2-4, a login user with
# sudo, and setfacl for become_user to an unprivileged user.
DEBIAN_PACKAGES=(
    erlang-base erlang-dev erlang-tools erlang-runtime-tools erlang-crypto erlang-public-key
    erlang-ssl erlang-inets erlang-syntax-tools erlang-parsetools erlang-asn1
    rebar3 erlang-p1-sqlite3 elixir git python3-venv shellcheck openssh-server sudo acl
)
# Test tools on top of requirements.txt; mock, pytest-mock, pytest-xdist and pyyaml are what
# `ansible-test units` expects when it runs without installing anything itself.
DEV_PACKAGES=(pytest pytest-mock pytest-xdist mock pyyaml ansible-lint antsibull-changelog antsibull-docs ansible-runner ansible-builder)
MIN_PYTHON=11

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Microseconds since the epoch, whatever the locale's decimal mark.
now_us() { local t=${EPOCHREALTIME//[!0-9]/}; echo "$t"; }
seconds_since() {
    local d=$(( $(now_us) - $1 ))
    printf '%d.%d' $(( d / 1000000 )) $(( d / 100000 % 10 ))
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root to run: $*"
    fi
}

ensure_system() {
    local missing=() pkg
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "not a Debian system; install these by hand: ${missing[*]}"
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
}

# Prints "<minor> <path>" when the interpreter really runs (a pyenv shim for a version that is
# not selected exits non-zero) and can build a virtualenv with pip.
probe_python() {
    local minor
    minor=$("$1" -c 'import sys, venv, ensurepip; print(sys.version_info[1] if sys.version_info[0] == 3 else 0)' 2>/dev/null) || return 1
    echo "$minor $1"
}

find_python() {
    local dirs=() dir candidate best_minor=0 best="" found="" minor path
    if [ -n "${PYTHON:-}" ]; then
        found=$(probe_python "$PYTHON") || die "PYTHON=$PYTHON does not run or lacks venv/ensurepip"
        [ "${found%% *}" -ge "$MIN_PYTHON" ] || die "PYTHON=$PYTHON is older than 3.$MIN_PYTHON"
        echo "$found"
        return
    fi
    IFS=: read -r -a dirs <<< "${PATH:-}"
    dirs+=(/usr/local/bin /usr/bin "${HOME:-/root}"/.pyenv/versions/*/bin)
    for dir in "${dirs[@]}"; do
        for candidate in "$dir"/python3.*; do
            [[ $candidate =~ /python3\.([0-9]+)$ && -x $candidate ]] || continue
            # Each probe starts an interpreter: skip names that cannot beat the best one so far.
            minor=${BASH_REMATCH[1]}
            if [ "$minor" -lt "$MIN_PYTHON" ] || [ "$minor" -le "$best_minor" ]; then continue; fi
            found=$(probe_python "$candidate") || continue
            minor=${found%% *} path=${found#* }
            if [ "$minor" -gt "$best_minor" ]; then best_minor=$minor best=$path; fi
        done
    done
    [ "$best_minor" -ge "$MIN_PYTHON" ] || die "no Python 3.$MIN_PYTHON+ with venv found (set PYTHON=...)"
    echo "$best_minor $best"
}

ensure_venv() {
    local found minor python core_pin wanted
    found=$(find_python)
    minor=${found%% *} python=${found#* }
    # ansible-core 2.19 is the tested floor and the last line that runs on Python 3.11.
    if [ "$minor" -eq 11 ]; then core_pin='ansible-core>=2.19,<2.20'; else core_pin='ansible-core>=2.19'; fi
    wanted=$( { "$python" -c 'import sys; print(sys.version)'; cat "$REPO/requirements.txt"
                echo "$core_pin ${DEV_PACKAGES[*]}"; } | sha256sum | cut -d' ' -f1)
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" = "$wanted" ] \
        && "$VENV/bin/python" -c 'import ansible, pytest' 2>/dev/null; then
        return 0
    fi
    say "building virtualenv $VENV with $python (3.$minor, $core_pin)"
    if [ -e "$VENV" ]; then
        [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists and is not a virtualenv; remove it or set VENV"
        rm -rf "$VENV"
    fi
    "$python" -m venv "$VENV"
    # pip's output goes to a log that is shown only when it fails.
    if ! { "$VENV/bin/python" -m pip install --upgrade pip &&
           "$VENV/bin/python" -m pip install -r "$REPO/requirements.txt" "$core_pin" "${DEV_PACKAGES[@]}"
         } > "$VENV/pip-install.log" 2>&1; then
        tail -n 40 "$VENV/pip-install.log" >&2
        die "pip install into $VENV failed (full log: $VENV/pip-install.log)"
    fi
    echo "$wanted" > "$VENV/.requirements.sha256"
    "$VENV/bin/python" -m pip list 2>/dev/null | grep -iE '^(ansible-core|ansible-lint|pytest) '
}

venv_python_version() { "$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# ansible-test must run from .../ansible_collections/otp/release/ and resolves symlinks, so the
# checkout (tracked and untracked-but-not-ignored files) is copied into a temporary tree.
COPY_BASE=""
COPY=""
cleanup() { if [ -n "$COPY_BASE" ]; then rm -rf "$COPY_BASE"; fi; }
trap cleanup EXIT

copy_tree() {
    [ -n "$COPY" ] && return 0
    COPY_BASE=$(mktemp -d "${TMPDIR:-/tmp}/otp-release-test.XXXXXX")
    COPY=$COPY_BASE/ansible_collections/otp/release
    mkdir -p "$COPY"
    local venv_rel=${VENV#"$REPO"/}
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z -co --exclude-standard |
            while IFS= read -r -d '' f; do
                # -c lists deleted files too; a virtualenv inside the repo that is not ignored is skipped.
                [ -e "$f" ] || [ -L "$f" ] || continue
                [[ $f == "$venv_rel"/* ]] && continue
                printf '%s\0' "$f"
            done | tar --null --no-recursion -T - -cf - | tar -xf - -C "$COPY")
    else
        tar -C "$REPO" --exclude=./.git --exclude=./tests/output --exclude="./$venv_rel" \
            --exclude=__pycache__ -cf - . | tar -xf - -C "$COPY"
    fi
}

# ansible-test bootstraps pip in the virtualenvs of its sanity tests with a get-pip script from a
# host we cannot reach. When that script is not cached, cache a stand-in that installs the same
# pip version from its PyPI wheel; a cached real script is left alone.
ensure_get_pip() {
    local cache=$HOME/.ansible/test/cache version script
    for version in $("$VENV/bin/python" - <<'EOF'
import os, re, ansible_test
source = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
with open(source) as f:
    print(" ".join(sorted(set(re.findall(r"\bpip='([0-9.]+)'", f.read())))))
EOF
    ); do
        script=$cache/get_pip_${version//./_}.py
        [ -e "$script" ] && continue
        mkdir -p "$cache"
        ls "$cache"/pip-"$version"-*.whl >/dev/null 2>&1 ||
            "$VENV/bin/python" -m pip download -q --no-deps --only-binary=:all: -d "$cache" "pip==$version" >/dev/null 2>&1 ||
            die "could not download the pip $version wheel from PyPI"
        cat > "$script.tmp" <<EOF
# Stand-in for get-pip.py $version, written by the otp.release test runner: it installs pip from the
# wheel next to this file instead of downloading a bootstrap script.
import glob
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, glob.glob(os.path.join(here, "pip-$version-*.whl"))[0])
from pip._internal.cli.main import main

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--find-links", here] + args))
EOF
        mv "$script.tmp" "$script"
        say "cached a pip $version bootstrap stand-in: $script"
    done
}

phase_units() {
    copy_tree || return
    (cd "$COPY" && ansible-test units --python "$(venv_python_version)" --color no)
}

phase_sanity() {
    copy_tree || return
    ensure_get_pip || return
    (cd "$COPY" && ansible-test sanity --python "$(venv_python_version)" --color no)
}

phase_lint() {
    local targets=() dir
    for dir in roles playbooks; do [ -d "$REPO/$dir" ] && targets+=("$dir"); done
    if [ ${#targets[@]} -eq 0 ]; then
        say "lint: no roles/ or playbooks/ yet, nothing to lint"
        return 0
    fi
    copy_tree || return
    # Linted in the copy, so ansible-lint's caches stay out of the checkout.
    (cd "$COPY" && NO_COLOR=1 ANSIBLE_COLLECTIONS_PATH=$COPY_BASE ansible-lint --offline --profile production "${targets[@]}")
}

phase_docs() {
    copy_tree || return
    (cd "$COPY" && ANSIBLE_COLLECTIONS_PATH=$COPY_BASE antsibull-docs lint-collection-docs --plugin-docs .)
}

# The fragments lint, changelog.yaml lints, and CHANGELOG.md is what antsibull-changelog renders from it.
phase_changelog() {
    copy_tree || return
    (cd "$COPY" && antsibull-changelog lint && antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml &&
        antsibull-changelog generate) || return
    cmp -s "$COPY/CHANGELOG.md" "$REPO/CHANGELOG.md" ||
        { say "CHANGELOG.md is not what changelogs/changelog.yaml renders: run antsibull-changelog generate"; return 1; }
}

# Two workers: each has its own epmd, nodes, roots and SSH fleet (users and ports of its own), so the tests of one
# never see the other's. The world is built first, once, so that the workers do not both build it.
phase_integration() {
    (cd "$REPO" && python tests/world/build.py > /dev/null &&
        python -m pytest tests/integration -n 2 -v -p no:cacheprovider)
}

# Runs one phase, records its outcome and time; a failed phase does not stop the ones after it.
RESULTS=()
FAILED=0
run_phase() {
    local name=$1 start rc=0
    start=$(now_us)
    say "$name"
    "phase_$name" || rc=$?
    if [ "$rc" -eq 0 ]; then RESULTS+=("$name ok $(seconds_since "$start")s")
    else RESULTS+=("$name FAILED (exit $rc) $(seconds_since "$start")s"); FAILED=1
    fi
    say "${RESULTS[-1]}"
}

prepare() {
    local start
    start=$(now_us); ensure_system; RESULTS+=("system $(seconds_since "$start")s")
    start=$(now_us); ensure_venv;   RESULTS+=("venv $(seconds_since "$start")s")
    export PATH=$VENV/bin:$PATH
}

main() {
    local target=${1:-}
    case $target in
        system) ensure_system ;;
        venv) ensure_system; ensure_venv ;;
        world)
            prepare
            if [ -x "$REPO/tests/world/build.sh" ]; then "$REPO/tests/world/build.sh"
            elif [ -f "$REPO/tests/world/build.py" ]; then python "$REPO/tests/world/build.py"
            else die "tests/world has no build.sh or build.py yet"
            fi ;;
        demo) prepare; bash "$REPO/tests/demo.sh" ;;
        units | sanity | lint | docs | changelog)
            prepare; run_phase "$target"; exit "$FAILED" ;;
        integration) prepare; phase_integration ;;
        test)
            prepare
            run_phase units
            run_phase sanity
            run_phase lint
            run_phase docs
            run_phase changelog
            (IFS=','; say "so far:${RESULTS[*]/#/ }")
            # Last, so that its pytest summary is the last line printed.
            say "integration"
            phase_integration || FAILED=1
            exit "$FAILED" ;;
        *) die "usage: $0 {system|venv|world|demo|units|sanity|lint|docs|changelog|integration|test}" ;;
    esac
}

main "$@"
