# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Erlang term text <-> Python. The fixtures are files written by OTP 25 and rebar3 3.19 (relx 4.7)."""

from __future__ import annotations

import copy
import json
import math
import os
import time

import pytest

from ansible_collections.otp.release.plugins.module_utils._erlterm import (
    Atom, Binary, Frozen, ImproperList, Map, Opaque, ParseError, format_term, is_atom, parse, parse_all, to_plain,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "erlterm")
A = Atom


def fixture(name, encoding="utf-8"):
    with open(os.path.join(FIXTURES, name), "r", encoding=encoding) as handle:
        return handle.read()


def same(left, right):
    """Equal and of the same types all the way down (== alone does not tell an atom from a string)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, ImproperList):
        return same(list(left), list(right)) and same(left.tail, right.tail)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    if isinstance(left, dict):
        return len(left) == len(right) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(left.items(), right.items()))
    if isinstance(left, Frozen):
        return same(left.value, right.value)
    if isinstance(left, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    return left == right


# --- reading ------------------------------------------------------------------------------------------

READ = [
    # atoms
    ("ok", A("ok")),
    ("'quoted atom'", A("quoted atom")),
    ("'A'", A("A")),
    ("a@b_C9", A("a@b_C9")),
    ("'it\\'s'", A("it's")),
    ("'back\\\\slash'", A("back\\slash")),
    ("'\\x{65E5}\\x{672C}'", A("\u65e5\u672c")),
    ("h\u00e9llo", A("h\u00e9llo")),
    ("'end'", A("end")),
    ("maybe", A("maybe")),
    ("true", A("true")),
    ("''", A("")),
    # strings
    ('"abc"', "abc"),
    ('""', ""),
    ('"ab" "cd"', "abcd"),
    ('"ab" % a comment between\n "cd"', "abcd"),
    ('"a\nb"', "a\nb"),
    ('"\\n\\r\\t\\v\\b\\f\\e\\s\\d"', "\n\r\t\v\b\f\x1b \x7f"),
    ('"\\"\\\\\\\'"', "\"\\'"),
    ('"\\101\\1011\\7"', "AA1\x07"),
    ('"\\x41\\x{e9}\\x{1F600}"', "A\u00e9\U0001F600"),
    ('"\\^a\\^Z\\^["', "\x01\x1a\x1b"),
    ('"\\q"', "q"),
    ('"h\u00e9llo \u65e5\u672c"', "h\u00e9llo \u65e5\u672c"),
    ('"% not a comment"', "% not a comment"),
    # integers and characters
    ("0", 0),
    ("-1", -1),
    ("- 1", -1),
    ("+2", 2),
    ("123456789012345678901234567890", 123456789012345678901234567890),
    ("16#FF", 255),
    ("16#ff_ff", 65535),
    ("-16#10", -16),
    ("2#101", 5),
    ("36#Zz", 35 * 36 + 35),
    ("1_000", 1000),
    ("$c", 99),
    ("$ ", 32),
    ("$\\n", 10),
    ("$\\\\", 92),
    ("$\\x{1F600}", 0x1F600),
    ("$\\^a", 1),
    ("$\u00e9", 233),
    # floats
    ("1.5", 1.5),
    ("1.0e-3", 0.001),
    ("-2.5E10", -2.5e10),
    ("2.5e+3", 2500.0),
    ("1_0.5_0", 10.5),
    ("-0.0", -0.0),
    # binaries
    ("<<>>", Binary(b"")),
    ('<<"text">>', Binary(b"text")),
    ('<<"h\u00e9llo"/utf8>>', Binary("h\u00e9llo".encode("utf-8"))),
    ('<<"h\u00c3\u00a9llo">>', Binary("h\u00e9llo".encode("utf-8"))),  # how ~p prints UTF-8 bytes
    ("<<1,2,3>>", Binary(b"\x01\x02\x03")),
    ("<<-1, 256>>", Binary(b"\xff\x00")),
    ('<<"ab", 0, $c>>', Binary(b"ab\x00c")),
    ('<<"ab" "cd">>', Binary(b"abcd")),
    ('<<"1\\\\.[0-9]+">>', Binary(b"1\\.[0-9]+")),
    ("<<1:16>>", Binary(b"\x00\x01")),
    ("<<1:16/little>>", Binary(b"\x01\x00")),
    ('<<"ab":16>>', Binary(b"\x00a\x00b")),
    ("<<$a/utf8, 233/utf8, 16#1F600/utf8>>", Binary("a\u00e9\U0001F600".encode("utf-8"))),
    ("<<1:32/big-unsigned-integer>>", Binary(b"\x00\x00\x00\x01")),
    ('<<"\u65e5">>', Binary(b"\xe5")),  # like Erlang: a latin-1 segment keeps the low 8 bits
    # tuples and lists
    ("{}", ()),
    ("{a}", (A("a"),)),
    ("{a, {b, [c]}}", (A("a"), (A("b"), [A("c")]))),
    ("[]", []),
    ("[1, 2, 3]", [1, 2, 3]),
    ("[[]]", [[]]),
    ("[a|b]", ImproperList([A("a")], A("b"))),
    ("[1,2|T0]".replace("T0", "{t}"), ImproperList([1, 2], (A("t"),))),
    ("[1,2|[3]]", [1, 2, 3]),
    ("[1|[2|[3|x]]]", ImproperList([1, 2, 3], A("x"))),
    ('[$a|"bc"]', [97, 98, 99]),
    ('[a|""]', [A("a")]),
    ("[a|[]]", [A("a")]),
    # maps
    ("#{}", Map()),
    ("# {a => 1}", Map({A("a"): 1})),
    ('#{k => v, "s" => <<"b">>, <<"bin">> => 1, 2 => {x}}',
     Map({A("k"): A("v"), "s": Binary(b"b"), Binary(b"bin"): 1, 2: (A("x"),)})),
    ("#{a => 1, a => 2}", Map({A("a"): 2})),
    ("#{[1,2] => list, #{} => map, {1.0} => float, 1 => int, 1.0 => float_one}",
     Map({Frozen([1, 2]): A("list"), Frozen(Map()): A("map"), Frozen((1.0,)): A("float"), 1: A("int"),
          Frozen(1.0): A("float_one")})),
    ('#{ok => atom, "ok" => string}', Map({A("ok"): A("atom"), Frozen("ok"): A("string")})),
    # what ~p prints but file:consult cannot read
    ("<0.123.0>", Opaque("<0.123.0>")),
    ("#Ref<0.3378063610.1247805441.64838>", Opaque("#Ref<0.3378063610.1247805441.64838>")),
    ("#Port<0.5>", Opaque("#Port<0.5>")),
    ("#Fun<erl_eval.6.123>", Opaque("#Fun<erl_eval.6.123>")),
    ("fun lists:reverse/1", Opaque("fun lists:reverse/1")),
    ("fun 'A':'b c'/0", Opaque("fun 'A':'b c'/0")),
    # comments and blanks
    ("%% coding: utf-8\n  {a, % first\n b}  % last", (A("a"), A("b"))),
    ("\t{a,\u00a0b\x07\x85}\r\n", (A("a"), A("b"))),  # erl_scan skips Latin-1 controls and NBSP
    ("ok.", A("ok")),
    ("ok .\n", A("ok")),
    ("{a}.%", (A("a"),)),
]


@pytest.mark.parametrize("text, expected", READ, ids=[case[0] for case in READ])
def test_parse(text, expected):
    assert same(parse(text), expected)


def test_atom_is_a_str_told_apart_by_type():
    ok = parse("ok")
    assert ok == "ok" and isinstance(ok, str)
    assert repr(ok) == "Atom('ok')"
    assert is_atom(ok) and is_atom(ok, "ok") and not is_atom(ok, "error")
    assert not is_atom(parse('"ok"')) and not is_atom("ok")
    assert not isinstance(str(ok), Atom)
    assert is_atom(parse("true"), "true") and parse("true") is not True
    assert json.dumps(ok) == '"ok"'


def test_types_behave():
    assert Binary(b"h\xc3\xa9llo").text == "h\u00e9llo"
    assert Binary(b"\xff").text == "\ufffd"
    assert repr(Binary(b"x")) == "Binary(b'x')"
    assert [Opaque(text).kind for text in ("<0.1.0>", "#Ref<0.1.2.3>", "#Port<0.5>", "#Fun<m.1.2>", "fun m:f/1")] == [
        "pid", "ref", "port", "fun", "fun"]
    improper = ImproperList([1, 2], A("t"))
    assert improper.tail == A("t") and list(improper) == [1, 2]
    assert improper != [1, 2] and [1, 2] != improper
    assert improper != ImproperList([1, 2], A("u")) and improper == ImproperList([1, 2], A("t"))
    assert repr(improper) == "ImproperList([1, 2], tail=Atom('t'))"
    assert same(copy.deepcopy(improper), improper)
    assert repr(parse("#{[1] => a}")) == "Map({Frozen([1]): Atom('a')})"
    assert Frozen([1]) == Frozen([1]) and Frozen([1]) != Frozen((1,)) and Frozen(1.0) != Frozen(1)
    assert parse("#{a => 1}")["a"] == 1  # an atom key is found by its text


def test_parse_all_reads_consult_files():
    assert parse_all("") == []
    assert parse_all("% only a comment\n") == []
    assert same(parse_all("a.\n{b, \"c\"}. [1].\n%% end\n"), [A("a"), (A("b"), "c"), [1]])
    assert same(parse_all("1.5.\n2."), [1.5, 2])
    assert same(parse_all("x.% comment right after the dot"), [A("x")])


def test_large_term_parses_in_linear_time():
    # relup-sized and larger: a quadratic parser would take minutes on the large one.
    steps = [(A("load"), (A("mod_%d" % i), A("brutal_purge"), A("brutal_purge"))) for i in range(12000)]
    steps += [(A("apply"), (A("io"), A("format"), ["h\u00e9llo ~p\n", [i, -i]], Map({A("k"): Binary(b"v")})))
              for i in range(1200)]
    term = ("2.0.0", [("1.0.0", [], steps)], [("1.0.0", [], steps)])
    text = format_term(term) + ".\n"
    assert len(text) > 1200000
    started = time.perf_counter()
    assert same(parse_all(text), [term])
    assert time.perf_counter() - started < 30
    big_string = '"' + "ab\\n" * 250000 + '"'
    assert parse(big_string) == "ab\n" * 250000
    with pytest.raises(ParseError, match="unterminated string"):
        parse(big_string[:-1])
    assert parse("<<" + ",".join(["255"] * 100000) + ">>") == b"\xff" * 100000


def test_deep_nesting_is_a_parse_error():
    with pytest.raises(ParseError, match="nested too deeply"):
        parse("[" * 5000 + "]" * 5000)


def test_text_must_be_str():
    with pytest.raises(TypeError, match="decode it first"):
        parse(b"ok")


# --- errors -------------------------------------------------------------------------------------------

ERRORS = [
    # (function, text, line, column, reason)
    (parse, "[\n {a,\n  b, c]", 3, 7, "expected ',' or '}' in tuple, found ']'"),
    (parse, "{a,\n b\n c}", 3, 2, "expected ',' or '}' in tuple, found atom c"),
    (parse, "[1 2]", 1, 4, "expected ',' or '|' or ']' in list, found number 2"),
    (parse, "#{a => 1 b => 2}", 1, 10, "expected ',' or '}' in map, found atom b"),
    (parse, "#{a}", 1, 4, "expected '=>' after a map key, found '}'"),
    (parse, "#a", 1, 2, "expected '{' after '#', found atom a"),
    (parse, "<<1 2>>", 1, 5, "expected ',' or '>>' in binary, found number 2"),
    (parse, "{a,}", 1, 4, "expected a term, found '}'"),
    (parse, "[a|b|c]", 1, 5, "expected ']' after the tail of a list, found '|'"),
    (parse, "[a|]", 1, 4, "expected a term, found ']'"),
    (parse, "- a", 1, 3, "expected a number after '-', found atom a"),
    (parse, "- - 1", 1, 3, "expected a number after '-', found '-'"),
    (parse, "1.e5", 1, 2, "expected end of input after the term, found '.' with no white space after it"),
    (parse, "{a}.b.", 1, 4, "expected end of input after the term, found '.' with no white space after it"),
    (parse, "a. b.", 1, 4, "expected end of input after the term, found atom b"),
    (parse, "1 2", 1, 3, "expected end of input after the term, found number 2"),
    (parse, '"\u65e5\u672c" x', 1, 6, "expected end of input after the term, found atom x"),
    (parse, "X", 1, 1, "expected a term, found variable X"),
    (parse, "{a, _}", 1, 5, "expected a term, found variable _"),
    (parse, "end", 1, 1, "expected a term, found reserved word end: quote it ('end') to make it an atom"),
    (parse, "fun foo", 1, 1, "expected fun Module:Function/Arity"),
    (parse, "<<1.5>>", 1, 3, "expected an integer or a string in a binary, found number 1.5"),
    (parse, "<<1:3>>", 1, 5, "bitstrings are not supported (a segment of 3 bits)"),
    (parse, "<<1.5/float>>", 1, 3, "expected an integer or a string in a binary, found number 1.5"),
    (parse, '<<"a"/utf16>>', 1, 7, "binary segment type utf16 is not supported"),
    (parse, "<<1:16/utf8>>", 1, 8, "a utf8 segment cannot have a size"),
    (parse, "<<16#D800/utf8>>", 1, 11, "a utf8 segment holds a number that is not a Unicode character"),
    (parse, "2#102", 1, 1, "2#102 is not an integer in base 2"),
    (parse, "37#1", 1, 1, "integer base 37 is not between 2 and 36"),
    # bad tokens
    (parse, "{a, &}", 1, 5, "unexpected character '&'"),
    (parse, "{a,\n \u65e5}", 2, 2, "unexpected character '\u65e5'"),
    (parse, "{a, \u200b}", 1, 5, "unexpected character U+200B"),
    (parse, '"\\x"', 1, 2, "bad \\x escape: use \\xHH or \\x{H...}"),
    (parse, '"ab\\x{D800}"', 1, 4, "\\x{D800} is not a Unicode character"),
    (parse, "'\\x{110000}'", 1, 2, "\\x{110000} is not a Unicode character"),
    (parse, "$", 1, 1, "'$' at the end of the input: a character is missing"),
    # unterminated: the position is where the unfinished thing starts
    (parse, 'a.\n{b, "abc\n', 2, 5, "unterminated string"),
    (parse, "{a, 'abc}", 1, 5, "unterminated quoted atom"),
    (parse, "{a,", 1, 1, "unterminated tuple: the input ends before its closing '}'"),
    (parse, "{a", 1, 1, "unterminated tuple: the input ends before its closing '}'"),
    (parse, "x(\n  [1,\n   2", 1, 2, "unexpected character '('"),
    (parse, "{ok,\n  [1,\n   2", 2, 3, "unterminated list: the input ends before its closing ']'"),
    (parse, "[a|", 1, 1, "unterminated list: the input ends before its closing ']'"),
    (parse, "[a|b", 1, 1, "unterminated list: the input ends before its closing ']'"),
    (parse, "<<1,2", 1, 1, "unterminated binary: the input ends before its closing '>>'"),
    (parse, "<<1,", 1, 1, "unterminated binary: the input ends before its closing '>>'"),
    (parse, "#{a => 1", 1, 1, "unterminated map: the input ends before its closing '}'"),
    (parse, "#{a", 1, 1, "unterminated map: the input ends before its closing '}'"),
    (parse, "#{a =>", 1, 1, "unterminated map: the input ends before its closing '}'"),
    # unexpected end of input
    (parse, "", 1, 1, "expected a term, found end of input"),
    (parse, "  % nothing\n", 2, 1, "expected a term, found end of input"),
    (parse, "-", 1, 2, "expected a number after '-', found end of input"),
    (parse, "#", 1, 2, "expected '{' after '#', found end of input"),
    (parse_all, "{a, b}", 1, 7, "expected '.' after the term, found end of input"),
    (parse_all, "a.\nb\n", 3, 1, "expected '.' after the term, found end of input"),
    (parse_all, "a.\nb c.", 2, 3, "expected '.' after the term, found atom c"),
    (parse_all, "13.1.5 2.0.0\n", 1, 5, "expected '.' after the term, found '.' with no white space after it"),
]


@pytest.mark.parametrize("function, text, line, column, reason", ERRORS, ids=[repr(error[1]) for error in ERRORS])
def test_errors_say_where_and_what(function, text, line, column, reason):
    with pytest.raises(ParseError) as caught:
        function(text)
    assert (caught.value.line, caught.value.column, caught.value.reason) == (line, column, reason)
    assert str(caught.value) == "line %d, column %d: %s" % (line, column, reason)


# --- writing ------------------------------------------------------------------------------------------

FORMAT = [
    (A("ok"), "ok"),
    (A("a@b_C9"), "a@b_C9"),
    (A("Up"), "'Up'"),
    (A("_x"), "'_x'"),
    (A(""), "''"),
    (A("a b"), "'a b'"),
    (A("it's"), "'it\\'s'"),
    (A("back\\slash"), "'back\\\\slash'"),
    (A("end"), "'end'"),
    (A("maybe"), "'maybe'"),
    (A("h\u00e9llo"), "'h\\x{E9}llo'"),
    (A("new\nline"), "'new\\nline'"),
    (A('say "hi"'), "'say \"hi\"'"),
    ("abc", '"abc"'),
    ("", '""'),
    ('q"uote', '"q\\"uote"'),
    ("it's", '"it\'s"'),
    ("back\\slash", '"back\\\\slash"'),
    ("a\nb\tc\rd\x00\x7f", '"a\\nb\\tc\\rd\\x{0}\\x{7F}"'),
    ("h\u00e9llo \u65e5\U0001F600", '"h\\x{E9}llo \\x{65E5}\\x{1F600}"'),
    (b"", "<<>>"),
    (b"text", '<<"text">>'),
    (Binary(b"a\nb"), '<<"a\\nb">>'),
    (b'q"\\', '<<"q\\"\\\\">>'),
    ("h\u00e9llo".encode("utf-8"), '<<"h\\x{E9}llo"/utf8>>'),
    (b"\x00\x01\xff", "<<0,1,255>>"),
    (b"\x80abc", "<<128,97,98,99>>"),
    (bytearray(b"ab"), '<<"ab">>'),
    (True, "true"),
    (False, "false"),
    (None, "undefined"),
    (0, "0"),
    (-42, "-42"),
    (2 ** 100, "1267650600228229401496703205376"),
    (1.5, "1.5"),
    (1.0, "1.0"),
    (-0.0, "-0.0"),
    (1e-05, "1.0e-5"),
    (1.5e-10, "1.5e-10"),
    (1e16, "1.0e16"),
    (-2.5e100, "-2.5e100"),
    (0.1, "0.1"),
    ((), "{}"),
    ((A("ok"), "1.0.0", 1), '{ok,"1.0.0",1}'),
    ([], "[]"),
    ([A("a"), [b"x"]], '[a,[<<"x">>]]'),
    (ImproperList([1, 2], A("t")), "[1,2|t]"),
    (ImproperList([], A("t")), "t"),
    ({}, "#{}"),
    ({A("k"): "v", "s": 1}, '#{k => "v","s" => 1}'),
    (Map({Frozen([1]): A("a")}), "#{[1] => a}"),
    (Frozen((1.0,)), "{1.0}"),
]


@pytest.mark.parametrize("value, text", FORMAT, ids=[case[1] for case in FORMAT])
def test_format_term(value, text):
    assert format_term(value) == text


@pytest.mark.parametrize("value, error", [
    (set([1]), TypeError),
    (object(), TypeError),
    ({"k": object()}, TypeError),
    (Opaque("<0.1.0>"), TypeError),
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    ("\udc80", ValueError),
    (A("\ud800"), ValueError),
])
def test_format_term_refuses(value, error):
    with pytest.raises(error):
        format_term(value)


ROUND_TRIP = [
    A("ok"), A(""), A("A"), A("a b"), A("it's"), A("back\\slash"), A("new\nline"), A("tab\there"), A("end"),
    A("maybe"), A("else"), A("h\u00e9llo"), A("\u65e5\u672c"), A("\U0001F600"), A("a@b"), A("_x"), A("'"),
    A("%"), A("1"), A("\x00"),
    "", "hello", 'quote " inside', "back\\slash", "multi\nline\r\n", "tab\t", "h\u00e9llo", "\u65e5\u672c",
    "\U0001F600", "\x00\x01\x7f\x80\x9f\xa0", "'single'", "% not a comment", "\\x{41}", "$a", "\\",
    Binary(b""), Binary(b"abc"), Binary(b"\x00\xff"), Binary("h\u00e9llo".encode("utf-8")), Binary(b"line\n"),
    Binary(b'"q"\\'), Binary(b"\x80"), Binary("\U0001F600".encode("utf-8")), Binary(b"\xe9t\xe9"),
    0, -1, 7, 2 ** 100, -(2 ** 70),
    0.0, -0.0, 1.5, -2.5e10, 1e-05, 1e16, 1.7976931348623157e308, 5e-324, 0.1, 123456.789, 1e22,
    (), (A("a"),), (A("a"), ("nested", (1, [2]))),
    [], [1, 2, 3], [[]], [A("a"), "b", Binary(b"c")], [[A("x"), [A("y")]]],
    ImproperList([1, 2], A("t")), ImproperList([A("a")], Binary(b"x")), ImproperList([1], ()),
    ImproperList([[1]], Map()),
    Map(), Map({A("a"): 1, "str": 2, Binary(b"bin"): 3, 4: A("four"), (A("t"), 1): []}),
    Map({Frozen([1, 2]): A("list_key"), Frozen(Map()): 1, Frozen((1.0,)): 2, 1: 3, Frozen(1.0): 4}),
    Map({A("ok"): 1, Frozen("ok"): 2}),
    Map({A("outer"): Map({Frozen([A("inner")]): Map({A("deep"): [1.5]})})}),
    ("2.0.0", [("1.0.0", [], [A("point_of_no_return"), (A("load"), (A("m"), A("brutal_purge"), A("brutal_purge")))])],
     []),
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=[repr(value) for value in ROUND_TRIP])
def test_round_trip(value):
    text = format_term(value)
    assert same(parse(text), value), text
    assert same(parse_all(text + ".\n"), [value])


def test_round_trip_of_python_only_values():
    # bool, None, bytes and plain dicts are written fine; they come back as their Erlang types.
    assert same(parse(format_term([True, False, None])), [A("true"), A("false"), A("undefined")])
    assert same(parse(format_term(b"x")), Binary(b"x"))
    assert same(parse(format_term({"k": (1,)})), Map({"k": (1,)}))


# --- plain values -------------------------------------------------------------------------------------

def test_to_plain():
    term = parse('{ok, "str", <<"h\u00c3\u00a9">>, [a|b], #{k => <<"v">>, "s" => 1, <<"b">> => 2, 3 => x,'
                 ' [1] => y, {t, 1} => z}, <0.1.0>, 1.5, [], <<255>>}')
    plain = to_plain(term)
    assert plain == ["ok", "str", "h\u00e9", ["a", "b"],
                     {"k": "v", "s": 1, "b": 2, "3": "x", "[1]": "y", "{t,1}": "z"},
                     "<0.1.0>", 1.5, [], "\ufffd"]
    assert json.loads(json.dumps(plain)) == plain
    for value in (plain[0], plain[1], plain[5]):
        assert isinstance(value, str) and not isinstance(value, (Atom, Opaque))
    assert to_plain({True: None, None: False}) == {"true": None, "undefined": False}
    with pytest.raises(TypeError):
        to_plain(object())


# --- real files ---------------------------------------------------------------------------------------

def test_rel_file():
    [release] = parse_all(fixture("shop.rel"))
    assert same(release, (A("release"), ("shop", "2.0.0"), (A("erts"), "13.1.5"),
                          [(A("kernel"), "8.5.3"), (A("stdlib"), "4.2"), (A("sasl"), "4.2"), (A("shop"), "2.0.0")]))


def test_releases_file_after_an_upgrade():
    [releases] = parse_all(fixture("RELEASES"))
    assert [(rel[2], rel[5]) for rel in releases] == [("2.0.0", "permanent"), ("1.0.0", "old")]
    assert all(is_atom(rel[0], "release") and is_atom(rel[5]) and isinstance(rel[1], str) for rel in releases)
    assert same(releases[0][4][3], (A("shop"), "2.0.0", "lib/shop-2.0.0"))
    assert same(releases[1][4][3], (A("shop"), "1.0.0", "/tmp/relroot/lib/shop-1.0.0"))


def test_relup():
    [(version, up, down)] = parse_all(fixture("relup"))
    assert version == "2.0.0"
    [(up_from, up_description, up_steps)] = up
    [(down_to, down_description, down_steps)] = down
    assert (up_from, up_description, down_to, down_description) == ("1.0.0", [], "1.0.0", [])
    assert same(up_steps[0], (A("load_object_code"), (A("shop"), "2.0.0", [A("shop_price"), A("shop_srv"), A("shop_sup")])))
    assert same(up_steps[1], A("point_of_no_return"))
    assert same(up_steps[5], (A("code_change"), A("up"), [(A("shop_srv"), [])]))
    assert same(down_steps[-1], (A("purge"), [A("shop_price")]))


def test_sys_config():
    [config] = parse_all(fixture("sys.config"))
    shop = dict(config)[A("shop")]
    assert same(shop, [(A("port"), 8080), (A("greeting"), "hello"), (A("limits"), Map({A("max"): 10, "min": 1}))])


def test_boot_script():
    [script] = parse_all(fixture("start.script"))
    assert is_atom(script[0], "script") and script[1] == ("shop", "2.0.0")
    assert (A("progress"), A("started")) in script[2]
    assert any(step[0] == "apply" and step[1][0] == "application" and step[1][2] == [A("shop"), A("permanent")]
               for step in script[2] if isinstance(step, tuple))


def test_start_erl_data_is_not_term_text():
    # "<erts vsn> <release vsn>": split it on white space, it is no term.
    text = fixture("start_erl.data")
    assert text.split() == ["13.1.5", "2.0.0"]
    with pytest.raises(ParseError):
        parse_all(text)


def test_release_handler_answers_printed_with_0p():
    lines = fixture("release_handler.txt").splitlines()
    answers = dict((tag, parse(line)) for tag, line in zip(lines[0::2], lines[1::2]))
    assert same(answers["unpack"], (A("ok"), "2.0.0"))
    assert same(answers["unpack_again"], (A("error"), (A("no_such_file"), "/tmp/relroot/releases/2.0.0/shop.tar.gz")))
    assert same(answers["install"], (A("ok"), "1.0.0", []))
    assert same(answers["install_unknown"], (A("error"), (A("no_such_release"), "9.9.9")))
    assert same(answers["which_releases_after"][1],
                ("shop", "1.0.0", ["kernel-8.5.3", "stdlib-4.2", "sasl-4.2", "shop-1.0.0"], A("old")))
    assert same(answers["sys_state"], Map({A("items"): [], A("prices"): Map()}))
    [(child, pid, kind, modules)] = answers["children"]
    assert pid.kind == "pid" and pid == "<0.89.0>" and same(modules, [A("shop_srv")])
    status = answers["status"]
    assert is_atom(status[0], "status") and status[1].kind == "pid"
    assert same(status[3][-1][-1], (A("data"), [("State", Map({A("items"): [], A("prices"): Map()}))]))


PRINTED = {
    "maps": Map({1: A("int_key"), A("a"): 1, Frozen((1.0,)): A("float_key"), Frozen([1, 2]): (A("x"),),
                 "key": Binary(b"bin"), Binary(b"k"): Map()}),
    "binaries": [Binary(b""), Binary(b"\x01\x02\x03"), Binary(b"plain"), Binary("h\u00e9llo".encode("utf-8")),
                 Binary(b"1\\.[0-9]+"), Binary(b"tab\there")],
    "strings": [[], "abc", "h\u00e9llo", [0x65E5, 0x672C], "a\nb\"c\\d\t\x1b", [7], "\b\t\n", [127, 128, 159]],
    "atoms": [A("ok"), A("Up"), A("a b"), A("a\\b"), A("a'b"), A("\u65e5\u672c"), A("h\u00e9llo"), A("end"), A(""),
              A("\n"), A("a@b"), A("_x")],
    "numbers": [0, -1, 123456789012345678901234567890, -1.5e-10, 1.0e20, 0.1, 1.0, -0.0, 1.0e-5, 255],
    "lists": [[], ImproperList([1], 2), ImproperList([A("a"), A("b")], A("c")), [[]], (), ((),)],
    "record": (A("item"), "cheese", 0, [A("dairy")]),
}


@pytest.mark.parametrize("name, encoding", [("printed_latin1.bin", "latin-1"), ("printed_unicode.txt", "utf-8")])
def test_terms_printed_with_0p_and_0tp(name, encoding):
    # A default standard_io prints latin-1 bytes: decode with latin-1. After
    # io:setopts([{encoding, unicode}]) it prints UTF-8. Either way the terms come out the same.
    lines = [line for line in fixture(name, encoding).splitlines() if not line.startswith("%")]
    assert len(lines) == 18
    for half in (lines[:9], lines[9:]):
        terms = dict(parse(line) for line in half)
        for tag, expected in PRINTED.items():
            assert same(terms[A(tag)], expected), tag
        assert [opaque.kind for opaque in terms[A("opaque")]] == ["pid", "ref", "port", "fun", "fun"]
        assert terms[A("opaque")][4] == "fun lists:reverse/1"
        assert same(terms[A("error")][1][0], A("badarg"))
