"""The one-off VM of eval: its command line, its program, and how its outcome is read (the runner is stubbed)."""

import os
import re

import pytest

from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, format_term
from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._oneoff import VersionLayout, erlang_value, format_stack, program, run_eval
from ansible_collections.otp.release.plugins.module_utils._root import ReleaseRoot

APPS = [("kernel", "8.5.3"), ("stdlib", "4.2"), ("sasl", "4.2"), ("sqlite3", "1.1.14"), ("kvstore", "2.0.0")]


def make_root(path, versions=("1.0.0", "2.0.0"), relx=True, mix=False, sys_config=True, no_dot_erlang=True):
    erts_bin = path / "erts-13.1.5" / "bin"
    erts_bin.mkdir(parents=True)
    (erts_bin / "erlexec").write_text("#!/bin/sh\n")
    (erts_bin / "erlexec").chmod(0o755)
    (path / "bin").mkdir()
    (path / "bin" / "kvstore").write_text('REL_VSN="1.0.0"\n' if relx else "RELEASE_VSN=1.0.0\n")
    if mix:
        (path / "releases").mkdir()
        (path / "releases" / "COOKIE").write_text("x")
    releases = []
    for version in versions:
        directory = path / "releases" / version
        directory.mkdir(parents=True)
        apps = [(a, version if a == "kvstore" else v) for a, v in APPS]
        (directory / "kvstore.rel").write_text('{release,{"kvstore","%s"},{erts,"13.1.5"},[%s]}.\n' % (
            version, ",".join('{%s,"%s"}' % app for app in apps)))
        boots = ["start_clean"] + (["no_dot_erlang"] if no_dot_erlang else [])
        for boot in boots:
            (directory / (boot + ".boot")).write_bytes(b"\x83")
        if sys_config:
            (directory / "sys.config").write_text("[].\n")
        for app, vsn in apps:
            (path / "lib" / ("%s-%s" % (app, vsn)) / "ebin").mkdir(parents=True, exist_ok=True)
        releases.append('{release,"kvstore","%s","13.1.5",[],%s}' % (version, "permanent" if version == versions[0] else "unpacked"))
    (path / "lib" / "kvstore-2.0.0" / "ebin" / "kv_migrate.beam").write_bytes(b"FOR1")
    (path / "releases" / "RELEASES").write_text("[%s].\n" % ",".join(releases))
    return ReleaseRoot(str(path), "kvstore")


@pytest.fixture
def release(tmp_path):
    return make_root(tmp_path / "root")


class FakeVM(object):
    """Stands in for run_command: records the call and writes the outcome term the real VM would write."""

    def __init__(self, outcome=None, rc=0, stdout="", stderr="", raise_error=None):
        self.outcome = outcome
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.raise_error = raise_error
        self.calls = []

    def __call__(self, argv, stdin_text=None, env=None, timeout=None, max_output=None):
        program_file = re.search(r'file:script\("([^"]+)"\)', argv[-1]).group(1)
        with open(program_file) as handle:
            text = handle.read()
        self.calls.append(dict(argv=argv, env=env, timeout=timeout, program=text))
        if self.raise_error:
            raise self.raise_error
        if self.outcome is not None:
            result_file = re.search(r'file:write_file\("([^"]+)"', text).group(1)
            with open(result_file, "w", encoding="latin-1") as handle:
                handle.write("{otprel_eval,180,%s}.\n" % self.outcome)
        return self.rc, self.stdout, self.stderr


def text_binary(text):
    """A ~0tp text as the VM embeds it in the outcome: a UTF-8 binary printed with ~p (one byte per char)."""
    return format_term(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------------
# YAML arguments -> Erlang terms

@pytest.mark.parametrize("value, strings_as, erlang", [
    ("text", "binary", '<<"text">>'),
    ("text", "charlist", '"text"'),
    ("h\u00e9\u263a", "binary", '<<"h\\x{E9}\\x{263A}"/utf8>>'),
    (42, "binary", "42"),
    (2.5, "binary", "2.5"),
    (True, "binary", "true"),
    (None, "binary", "undefined"),
    ([1, "a"], "charlist", '[1,"a"]'),
    ({"atom": "dry_run"}, "binary", "dry_run"),
    ({"atom": "Needs Quotes"}, "binary", "'Needs Quotes'"),
    ({"tuple": [{"atom": "batch"}, 500]}, "binary", "{batch,500}"),
    ({"charlist": "/srv/x"}, "binary", '"/srv/x"'),
    ({"binary": "x"}, "charlist", '<<"x">>'),
    ({"limit": 5, "mode": {"atom": "fast"}}, "binary", '#{<<"limit">> => 5,<<"mode">> => fast}'),
    ({"atom": "a", "b": 1}, "binary", '#{<<"atom">> => <<"a">>,<<"b">> => 1}'),
])
def test_yaml_values_become_the_erlang_terms_the_docs_promise(value, strings_as, erlang):
    assert format_term(erlang_value(value, strings_as)) == erlang


@pytest.mark.parametrize("value, words", [
    ({"atom": 1}, "{atom: ...} takes a string"),
    ({"tuple": "a"}, "{tuple: ...} takes a list"),
])
def test_bad_tagged_values_are_refused(value, words):
    with pytest.raises(OtpReleaseError, match=re.escape(words)):
        erlang_value(value)


# ---------------------------------------------------------------------------------------------------
# The command line

def test_command_boots_the_versions_own_erts_boot_file_and_config_without_distribution(release):
    layout = VersionLayout(release, "2.0.0")
    argv, env = layout.command("/tmp/x/program.erl", "/tmp/x")
    root = release.root
    assert argv[:3] == [root + "/erts-13.1.5/bin/erlexec", "-boot", root + "/releases/2.0.0/no_dot_erlang"]
    assert argv[argv.index("-config") + 1] == root + "/releases/2.0.0/sys.config"
    assert "-noshell" in argv and "-noinput" in argv
    assert not set(argv) & {"-name", "-sname", "-setcookie", "-remsh", "-boot_var"}
    assert argv[-2] == "-eval" and 'file:script("/tmp/x/program.erl")' in argv[-1]
    assert env["ROOTDIR"] == root and env["BINDIR"] == root + "/erts-13.1.5/bin"
    assert (env["EMU"], env["PROGNAME"]) == ("beam", "erl")
    assert env["ERL_CRASH_DUMP"] == "/tmp/x/erl_crash.dump"
    assert all(env[name] == "" for name in ("ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "ERL_LIBS"))


def test_code_path_holds_every_app_of_the_rel_in_rel_order(release):
    layout = VersionLayout(release, "2.0.0")
    assert layout.apps == ["kernel", "stdlib", "sasl", "sqlite3", "kvstore"]
    assert layout.lib_dirs == [release.path("lib", "%s-%s" % (a, "2.0.0" if a == "kvstore" else v), "ebin") for a, v in APPS]


def test_without_its_rel_file_a_version_is_read_from_releases(release):
    """release_handler:unpack_release("2.0.0/kvstore") deletes releases/2.0.0/kvstore.rel; RELEASES still lists the libs."""
    os.unlink(release.path("releases", "2.0.0", "kvstore.rel"))
    libs = ",".join('{%s,"%s","%slib/%s-%s"}' % (a, v, "./" if a == "kernel" else "", a, "2.0.0" if a == "kvstore" else v) for a, v in APPS)
    with open(release.path("releases", "RELEASES"), "w") as handle:
        handle.write('[{release,"kvstore","2.0.0","13.1.5",[%s],unpacked},{release,"kvstore","1.0.0","13.1.5",[],permanent}].\n' % libs)
    layout = VersionLayout(release, "2.0.0")
    assert layout.apps == ["kernel", "stdlib", "sasl", "sqlite3", "kvstore"]
    assert layout.lib_dirs[0] == release.path("lib", "kernel-8.5.3", "ebin")
    assert layout.lib_dirs[-1] == release.path("lib", "kvstore-2.0.0", "ebin")
    assert layout.erts_bin == release.path("erts-13.1.5", "bin")


def test_start_clean_and_no_config_when_the_version_ships_neither(tmp_path):
    release = make_root(tmp_path / "root", sys_config=False, no_dot_erlang=False)
    (tmp_path / "root" / "releases" / "2.0.0" / "sys.config.src").write_text("[].\n")
    layout = VersionLayout(release, "2.0.0")
    argv = layout.command("/p", "/w")[0]
    assert argv[2].endswith("/releases/2.0.0/start_clean") and "-config" not in argv
    assert "sys.config.src is not rendered" in layout.warnings[0]


def test_a_mix_release_gets_its_boot_var(tmp_path):
    release = make_root(tmp_path / "root", relx=False, mix=True)
    argv = VersionLayout(release, "2.0.0").command("/p", "/w")[0]
    at = argv.index("-boot_var")
    assert argv[at + 1:at + 3] == ["RELEASE_LIB", release.path("lib")]


@pytest.mark.parametrize("damage, words", [
    (lambda root: None, "Version 3.0.0 of kvstore is not unpacked in {root} (versions there: 1.0.0, 2.0.0): unpack it first"),
    (lambda root: os.unlink(os.path.join(root, "erts-13.1.5", "bin", "erlexec")), "erlexec is missing: version 2.0.0 must bundle its ERTS 13.1.5"),
    (lambda root: os.rmdir(os.path.join(root, "lib", "sqlite3-1.1.14", "ebin")), "incomplete, {root}/lib/sqlite3-1.1.14/ebin is missing"),
    (lambda root: [os.unlink(os.path.join(root, "releases", "2.0.0", b + ".boot")) for b in ("start_clean", "no_dot_erlang")],
     "{root}/releases/2.0.0/start_clean.boot is missing"),
])
def test_a_missing_piece_is_named(release, damage, words):
    damage(release.root)
    version = "3.0.0" if "3.0.0" in words else "2.0.0"
    with pytest.raises(OtpReleaseError) as caught:
        VersionLayout(release, version)
    assert words.replace("{root}", release.root) in caught.value.msg


def test_program_is_ascii_and_carries_the_call(release):
    layout = VersionLayout(release, "2.0.0")
    text = program("kv_migrate", "run", [b"caf\xc3\xa9", Atom("x")], layout.lib_dirs, layout.apps, ["kvstore"], "/w/result.term")
    text.encode("ascii")
    assert 'erlang:apply(kv_migrate, run, [<<"caf\\x{E9}"/utf8>>,x])' in text
    assert "erlang:function_exported(kv_migrate, run, 2)" in text
    assert "App <- [kvstore], {error, Why} <- [application:ensure_all_started(App)]" in text
    assert "App <- [kernel,stdlib,sasl,sqlite3,kvstore], {error, Why} <- [application:load(App)]" in text
    assert 'file:write_file("/w/result.term"' in text


# ---------------------------------------------------------------------------------------------------
# Running and reading the outcome

def test_a_returned_value_comes_back_as_data_and_as_text(release):
    vm = FakeVM("{ok,12,%s}" % text_binary('{ok,[add_kv_updated_at],"t\u00e9",<0.85.0>}'), stdout="migrating\n")
    result = run_eval(release, "2.0.0", "kv_migrate", "run", runner=vm, timeout=30)
    assert result["result"] == ["ok", ["add_kv_updated_at"], "t\u00e9", "<0.85.0>"]
    assert result["result_text"] == '{ok,[add_kv_updated_at],"t\u00e9",<0.85.0>}'
    assert (result["stdout"], result["version"], result["call"]) == ("migrating\n", "2.0.0", "kv_migrate:run()")
    assert (result["boot_ms"], result["call_ms"], result["changed"]) == (180, 12, True)
    assert vm.calls[0]["timeout"] == 30


def test_the_default_version_is_the_one_releases_says_the_node_runs(release):
    vm = FakeVM("{ok,1,%s}" % text_binary("ok"))
    assert run_eval(release, None, "kv_migrate", "run", runner=vm)["version"] == "1.0.0"
    assert "/releases/1.0.0/" in vm.calls[0]["argv"][2]


def test_an_exception_fails_with_class_reason_and_a_plain_stack(release):
    stack = ('[{kv_migrate,fail,0,[{file,"src/kv_migrate.erl"},{line,31}]},{lists,map,2,[]},'
             '{erl_eval,do_apply,7,[{file,"erl_eval.erl"},{line,744}]},{erl_eval,expr,6,[]}]')
    vm = FakeVM("{exception,3,error,%s,%s}" % (text_binary("{migration_failed,deliberately}"), text_binary(stack)))
    with pytest.raises(OtpReleaseError) as caught:
        run_eval(release, "2.0.0", "kv_migrate", "fail", runner=vm)
    assert caught.value.msg == ("kv_migrate:fail/0 raised error:{migration_failed,deliberately} (version 2.0.0 of %s)." % release.root)
    details = caught.value.fields
    assert details["erlang_stack"] == "kv_migrate:fail/0 (src/kv_migrate.erl:31)\nlists:map/2"
    assert (details["erlang_class"], details["erlang_reason"], details["call_ms"]) == ("error", "{migration_failed,deliberately}", 3)


def test_stack_frames_with_arguments_show_the_arity():
    assert format_stack([(Atom("m"), Atom("f"), [1, 2], [])]) == "m:f/2"


@pytest.mark.parametrize("result_text, tags, fails", [
    ("{error,nope}", ["error"], True),
    ("error", ["error"], True),
    ("{ok,1}", ["error"], False),
    ('{"error",1}', ["error"], False),
    ("{aborted,x}", ["error", "aborted"], True),
    ("{error,nope}", [], False),
])
def test_failed_when_result_looks_at_the_tag(release, result_text, tags, fails):
    vm = FakeVM("{ok,1,%s}" % text_binary(result_text))
    if fails:
        with pytest.raises(OtpReleaseError, match="a failure by failed_when_result") as caught:
            run_eval(release, "2.0.0", "kv_migrate", "run", failed_when_result=tags, runner=vm)
        assert caught.value.fields["result_text"] == result_text
    else:
        assert run_eval(release, "2.0.0", "kv_migrate", "run", failed_when_result=tags, runner=vm)["result_text"] == result_text


@pytest.mark.parametrize("outcome, words", [
    ("{no_module,nofile}", "Module nomod is not in version 2.0.0 of {root} (nofile)"),
    ("{no_function,[0,2]}", "nomod:run/1 is not exported in version 2.0.0 of {root} (exported: run/0, run/2)"),
    ("{load_failed,kvstore,%s}" % text_binary('{"no such file or directory","kvstore.app"}'),
     'Application kvstore of version 2.0.0 of {root} could not be loaded in the one-off VM: {"no such file'),
    ("{start_failed,kvstore,%s}" % text_binary("{kvstore,{bad_return,x}}"), "could not be started in the one-off VM: {kvstore,{bad_return,x}}"),
])
def test_each_failure_before_the_call_says_what_is_wrong(release, outcome, words):
    with pytest.raises(OtpReleaseError) as caught:
        run_eval(release, "2.0.0", "nomod", "run", args=[1], runner=FakeVM(outcome))
    assert words.replace("{root}", release.root) in caught.value.msg


def test_a_vm_that_stops_without_a_result_reports_its_exit_and_output(release):
    vm = FakeVM(None, rc=1, stderr="init terminating in do_boot ({undef,...})\n")
    with pytest.raises(OtpReleaseError) as caught:
        run_eval(release, "2.0.0", "kv_migrate", "run", runner=vm)
    assert "exited with code 1 before kv_migrate:run() returned" in caught.value.msg
    assert "init terminating in do_boot" in caught.value.msg
    assert caught.value.fields["rc"] == 1


def test_a_timeout_kills_the_vm_and_says_so(release):
    vm = FakeVM(raise_error=NodeError("timeout", "erlexec did not finish within 5 s."))
    with pytest.raises(OtpReleaseError, match=r"kv_migrate:run\(\) did not finish within 5 s: the one-off VM of version 2.0.0 was killed"):
        run_eval(release, "2.0.0", "kv_migrate", "run", timeout=5, runner=vm)


def test_the_private_directory_is_removed_afterwards(release):
    vm = FakeVM("{ok,1,%s}" % text_binary("ok"))
    run_eval(release, "2.0.0", "kv_migrate", "run", runner=vm)
    work_dir = os.path.dirname(re.search(r'file:script\("([^"]+)"\)', vm.calls[0]["argv"][-1]).group(1))
    assert not os.path.exists(work_dir)


def test_check_mode_checks_the_module_and_does_not_run(release):
    vm = FakeVM("{ok,1,%s}" % text_binary("ok"))
    result = run_eval(release, "2.0.0", "kv_migrate", "run", check_mode=True, runner=vm)
    assert (result["skipped"], result["changed"], result["skipped_in_check_mode"]) == (True, False, True)
    assert not vm.calls
    with pytest.raises(OtpReleaseError, match="Module nomod is not in the applications of version 2.0.0"):
        run_eval(release, "2.0.0", "nomod", "run", check_mode=True, runner=vm)
