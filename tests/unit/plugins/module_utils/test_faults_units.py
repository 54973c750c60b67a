"""Pure parts of the fault handling: the capped program runner, refused option values, NaN arguments, cut texts."""

from __future__ import annotations

import math
import os
import sys

import pytest

from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._module import refuse_bad_values
from ansible_collections.otp.release.plugins.module_utils._oneoff import PRELOADED, erlang_value, interpret, term_of
from ansible_collections.otp.release.plugins.module_utils._proc import run_command


def test_run_command_keeps_at_most_max_output_bytes_and_counts_the_rest():
    rc, out, err = run_command([sys.executable, "-c", "import sys; sys.stdout.write('x' * 5000000); sys.stderr.write('e')"],
                               max_output=1000)
    assert (rc, out, err) == (0, "x" * 1000, "e")
    assert out.cut_bytes == 5000000 - 1000 and err.cut_bytes == 0


def test_run_command_passes_stdin_and_keeps_everything_without_a_cap():
    rc, out, _err = run_command(["/bin/cat"], stdin_text="line\n" * 100000)
    assert rc == 0 and out == "line\n" * 100000 and out.cut_bytes == 0


def test_run_command_kills_the_program_at_its_timeout():
    with pytest.raises(NodeError) as caught:
        run_command(["/bin/sleep", "30"], timeout=0.3)
    assert caught.value.kind == "timeout"


@pytest.mark.parametrize("params, words", [
    (dict(version="../../x"), "not a plain version"),
    (dict(version="/etc"), "not a plain version"),
    (dict(version=".."), "not a plain version"),
    (dict(version=""), "not a plain version"),
    (dict(name="a/b"), "not a plain name"),
    (dict(name="x" * 20000), "too long: at most 255 bytes"),
    (dict(version="a\0b"), "NUL"),
    (dict(module="m" * 256), "an Erlang atom"),
    (dict(start_apps=["ok", "a" * 300]), "too long"),
    (dict(health=dict(module="h" * 300, function="f")), "too long"),
    (dict(root="/" + "r" * 5000), "a path"),
])
def test_bad_values_are_refused_with_a_sentence(params, words):
    with pytest.raises(OtpReleaseError, match=words):
        refuse_bad_values(params)


def test_the_cookie_is_never_shown_and_args_are_data():
    with pytest.raises(OtpReleaseError) as caught:
        refuse_bad_values(dict(cookie="secret" * 100))
    assert "secret" not in caught.value.msg and "not shown" in caught.value.msg
    refuse_bad_values(dict(args=["x" * 100000, "a\0b"], version="2.0.0", name="kvstore", root="/opt/kvstore", cookie=None))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -math.inf, [1, float("nan")]])
def test_nan_and_infinity_are_not_erlang_numbers(value):
    with pytest.raises(OtpReleaseError, match="not an Erlang number"):
        erlang_value(value)


def test_a_cut_result_is_text_and_says_so():
    cut = ("cut", b"[1,2,3", 1000)
    assert term_of(cut) == ("[1,2,3", "[1,2,3 ... (cut: 1000 bytes in all)")
    fields = interpret(("ok", 5, cut), "version 2.0.0 of /r", "lists:seq/2", ["error"])
    assert fields["result"] is None and fields["truncated"] is True and "1000 bytes" in fields["warnings"][0]


def test_preloaded_modules_include_erlang():
    assert {"erlang", "init", "zlib", "prim_file"} <= PRELOADED and os.path.sep not in "".join(PRELOADED)
