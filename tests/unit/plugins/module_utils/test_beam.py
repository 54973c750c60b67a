"""_beam against what Debian's Erlang says about the same files (beam_lib:md5/1, module_info/1)."""

import shutil
import subprocess

import pytest

from ansible_collections.otp.release.plugins.module_utils._beam import BeamError, read_beam, read_beam_file, read_ebin

pytestmark = pytest.mark.skipif(not shutil.which("erlc"), reason="needs Erlang's erlc and erl (tests/run.sh system)")

SOURCES = {
    # A supervisor with a closure (FunT), literals (LitT), a string (StrT) and a big attribute.
    "rv_sup": """-module(rv_sup).
-behaviour(supervisor).
-vsn("7").
-export([init/1, adder/1]).
-rv_attr([{1.5, <<"bin">>, "text", 123456789012345678901234567890, -7, #{key => value}}]).
init(_) -> {ok, {#{strategy => one_for_one}, []}}.
adder(X) -> {fun(Y) -> X + Y end, "a string", [1, 2, 3]}.
""",
    # Two behaviours (one spelled the American way), a code_change/4 and a UTF-8 atom.
    "rv_statem": """-module(rv_statem).
-behaviour(gen_statem).
-behavior(rv_custom).
-export([callback_mode/0, init/1, code_change/4, 'h\u00e9llo'/0]).
callback_mode() -> state_functions.
init(_) -> {ok, idle, #{}}.
code_change(_Old, State, Data, _Extra) -> {ok, State, Data}.
'h\u00e9llo'() -> '\u00e9t\u00e9'.
""",
}


def erl_eval(expression, cwd):
    return subprocess.run(
        ["erl", "-noshell", "-noinput", "-eval", expression + ", halt()."],
        cwd=str(cwd), stdout=subprocess.PIPE, check=True, text=True,
    ).stdout


@pytest.fixture(scope="module")
def beams(tmp_path_factory):
    """{name: path} of beams compiled here: plain, gzip-compressed (+compressed) and stripped."""
    work = tmp_path_factory.mktemp("beams")
    for module, source in SOURCES.items():
        (work / (module + ".erl")).write_text(source, encoding="utf-8")
    (work / "compressed").mkdir()
    (work / "stripped").mkdir()
    names = sorted(SOURCES)
    subprocess.run(["erlc"] + [n + ".erl" for n in names], cwd=str(work), check=True)
    subprocess.run(["erlc", "+compressed", "-o", "compressed"] + [n + ".erl" for n in names], cwd=str(work), check=True)
    for name in names:
        shutil.copy(str(work / (name + ".beam")), str(work / "stripped"))
    erl_eval('{ok, _} = beam_lib:strip_files(filelib:wildcard("stripped/*.beam"))', work)
    return work


def erlang_md5s(work, paths):
    """beam_lib:md5/1 and, once loaded, Module:module_info(md5) for each path, as hex."""
    out = erl_eval(
        "[begin {ok, {M, Md5}} = beam_lib:md5(P), {ok, Bin} = file:read_file(P),"
        " {module, M} = code:load_binary(M, P, Bin),"
        ' io:format("~s ~s ~s~n", [M, binary:encode_hex(Md5), binary:encode_hex(M:module_info(md5))]),'
        " true = code:delete(M), code:purge(M) end || P <- {0}]".replace(
            "{0}", "[" + ",".join('"{0}"'.format(p) for p in paths) + "]"),
        work)
    return [line.split() for line in out.splitlines()]


def test_md5_is_beam_lib_md5_and_module_info_md5(beams):
    paths = sorted(str(p) for p in beams.glob("**/*.beam"))
    assert len(paths) == 6  # two modules: plain, compressed, stripped
    for path, (module, beam_lib_md5, loaded_md5) in zip(paths, erlang_md5s(beams, paths)):
        beam = read_beam_file(path)
        assert beam.md5 == beam_lib_md5.lower() == loaded_md5.lower(), path
        assert beam.module.encode("utf-8") == module.encode("latin-1"), path


def test_compressed_and_stripped_files_read_the_same(beams):
    plain = read_ebin(str(beams))
    assert read_ebin(str(beams / "compressed")) == plain
    assert read_ebin(str(beams / "stripped")) == {m: b._replace(behaviours=()) for m, b in plain.items()}


def test_module_exports_and_behaviours(beams):
    sup = read_beam_file(str(beams / "rv_sup.beam"))
    assert sup.module == "rv_sup"
    assert sup.exports == {("init", 1), ("adder", 1), ("module_info", 0), ("module_info", 1)}
    assert sup.behaviours == ("supervisor",)
    statem = read_beam_file(str(beams / "rv_statem.beam"))
    assert statem.module == "rv_statem"
    assert ("h\u00e9llo", 0) in statem.exports and ("code_change", 4) in statem.exports
    assert sorted(statem.behaviours) == ["gen_statem", "rv_custom"]


def test_md5_ignores_vsn_and_debug_info_but_not_code(beams, tmp_path):
    source = SOURCES["rv_sup"]
    variants = {
        "same": source.replace('-vsn("7")', '-vsn("8")'),
        "changed": source.replace("X + Y", "X - Y"),
    }
    base = read_beam_file(str(beams / "rv_sup.beam")).md5
    for name, text in variants.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "rv_sup.erl").write_text(text)
        subprocess.run(["erlc", "+no_debug_info", "rv_sup.erl"], cwd=str(tmp_path / name), check=True)
    assert read_beam_file(str(tmp_path / "same" / "rv_sup.beam")).md5 == base
    assert read_beam_file(str(tmp_path / "changed" / "rv_sup.beam")).md5 != base


@pytest.mark.parametrize("data", [b"", b"not a beam file", b"FOR1\0\0\0\4BEAM", b"\x1f\x8bnot gzip"])
def test_not_a_beam_file(data):
    with pytest.raises(BeamError):
        read_beam(data)


def test_truncated_chunk_names_the_file(beams, tmp_path):
    data = (beams / "rv_sup.beam").read_bytes()
    (tmp_path / "cut.beam").write_bytes(data[: len(data) // 2])
    with pytest.raises(BeamError, match="cut.beam"):
        read_beam_file(str(tmp_path / "cut.beam"))
