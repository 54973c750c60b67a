# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Erlang term text <-> Python values.

Reads what file:consult/1 reads (.rel, relup, RELEASES, sys.config, .app, .appup) and what io:format
"~0p"/"~0tp" prints, and writes Python values back as Erlang term text.

Erlang                      Python
atom  ok  'A b'             Atom (a str subclass; equal to the str of the same text: tell them apart
                            with is_atom() or isinstance, never with ==)
"chars" (a charlist)        str; adjacent literals concatenate. "" and [] are the same list in Erlang:
                            "" reads as '' and [] as [], and ~p prints an empty string as [].
[1,2]                       list (a list of integers stays a list, even when it is printable)
[a|b]  [1,2|T]              ImproperList (a list with .tail); [a|[b]] and [$a|"bc"] are proper lists
<<"t">> <<"t"/utf8>> <<1>>  Binary (a bytes subclass, .text decodes it as UTF-8)
1  16#FF  $a  1_000         int
1.5  1.0e-3                 float
{a, b}                      tuple
#{k => v}                   Map (a dict subclass). Keys Python cannot hash or compare as Erlang
                            does (lists, maps, floats, tuples holding one) are wrapped in Frozen;
                            Frozen(x).value is the key as read. So are keys that only collide in
                            Python, such as ok and "ok" in one map.
<0.1.0> #Ref<..> #Port<..>  Opaque (a str subclass with .kind: pid, ref, port, fun); ~p prints them,
#Fun<..> fun m:f/1          file:consult cannot read them and format_term refuses them.

Text is a Python str. Decode ~p output with the encoding of the device that printed it: latin-1 for a
default standard_io, UTF-8 after io:setopts([{encoding, unicode}]) or for unicode:characters_to_binary.
Bitstrings (a bit count that is not a multiple of 8) and float/utf16/utf32 binary segments are not read.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "Atom", "Binary", "Frozen", "ImproperList", "Map", "Opaque", "ParseError",
    "format_term", "is_atom", "parse", "parse_all", "to_plain",
]


class ParseError(Exception):
    """Text that is not Erlang term text. str() reads "line 3, column 7: expected ..."."""

    def __init__(self, reason, line, column):
        super(ParseError, self).__init__("line %d, column %d: %s" % (line, column, reason))
        self.reason = reason
        self.line = line
        self.column = column


class Atom(str):
    """An Erlang atom."""

    __slots__ = ()

    def __repr__(self):
        return "Atom(%s)" % str.__repr__(self)


class Opaque(str):
    """A pid, reference, port or fun as ~p prints it, e.g. Opaque('<0.85.0>').kind == 'pid'."""

    __slots__ = ()

    @property
    def kind(self):
        if self.startswith("<"):
            return "pid"
        if self.startswith("#Ref"):
            return "ref"
        if self.startswith("#Port"):
            return "port"
        return "fun"

    def __repr__(self):
        return "Opaque(%s)" % str.__repr__(self)


class Binary(bytes):
    """An Erlang binary."""

    __slots__ = ()

    @property
    def text(self):
        return self.decode("utf-8", errors="replace")

    def __repr__(self):
        return "Binary(%s)" % bytes.__repr__(self)


class ImproperList(list):
    """A list whose last tail is not a list: [a, b | tail]."""

    def __init__(self, items, tail):
        super(ImproperList, self).__init__(items)
        self.tail = tail

    def __eq__(self, other):
        return isinstance(other, ImproperList) and list.__eq__(self, other) and self.tail == other.tail

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __repr__(self):
        return "ImproperList(%s, tail=%r)" % (list.__repr__(self), self.tail)


class Map(dict):
    """An Erlang map."""

    def __repr__(self):
        return "Map(%s)" % dict.__repr__(self)


class Frozen(object):
    """A map key kept as read (in .value) that Python could not use as a dict key as it is."""

    __slots__ = ("value", "_identity")

    def __init__(self, value):
        self.value = value
        self._identity = _identity(value)

    def __eq__(self, other):
        return isinstance(other, Frozen) and self._identity == other._identity

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self._identity)

    def __repr__(self):
        return "Frozen(%r)" % (self.value,)


def is_atom(value, name=None):
    """True when value is an atom (and, given name, the atom with that name)."""
    return isinstance(value, Atom) and (name is None or str(value) == name)


def _identity(term):
    """A hashable value that tells apart every pair of terms Erlang tells apart."""
    if isinstance(term, Frozen):
        return term._identity
    if isinstance(term, Atom):
        return ("atom", str(term))
    if isinstance(term, Opaque):
        return ("opaque", str(term))
    if isinstance(term, bool):
        return ("atom", "true" if term else "false")
    if term is None:
        return ("atom", "undefined")
    if isinstance(term, str):
        return ("string", term)
    if isinstance(term, (bytes, bytearray)):
        return ("binary", bytes(term))
    if isinstance(term, int):
        return ("int", term)
    if isinstance(term, float):
        return ("float", term)
    if isinstance(term, ImproperList):
        return ("improper", tuple(_identity(item) for item in term), _identity(term.tail))
    if isinstance(term, list):
        return ("list",) + tuple(_identity(item) for item in term)
    if isinstance(term, tuple):
        return ("tuple",) + tuple(_identity(item) for item in term)
    if isinstance(term, dict):
        return ("map", frozenset((_identity(key), _identity(value)) for key, value in term.items()))
    raise TypeError("%s cannot be an Erlang term" % type(term).__name__)


def _needs_freezing(key):
    if isinstance(key, (list, dict, float)):
        return True
    return isinstance(key, tuple) and any(_needs_freezing(item) for item in key)


# ---------------------------------------------------------------------------------------------------
# Reading

# Words erl_scan reserves: bare, they are syntax, not atoms. 'maybe' and 'else' are atoms in OTP 25
# unless the maybe_expr feature is on, so only writing quotes them.
_RESERVED = frozenset(
    "after and andalso band begin bnot bor bsl bsr bxor case catch cond div end fun if let not of or "
    "orelse receive rem try when xor".split()
)
_QUOTED_ON_OUTPUT = _RESERVED | {"maybe", "else"}

_BLANK = "\\x00-\\x20\\x80-\\xa0"  # what erl_scan skips as white space (Latin-1 controls and NBSP too)
_NAME_CHARS = "a-zA-Z0-9_@\\xc0-\\xd6\\xd8-\\xf6\\xf8-\\xff"
_DIGITS = r"[0-9]+(?:_[0-9]+)*"

# Order matters: the dot that ends a term before '.', "<<" before a pid, "#Ref<" before '#', a float
# before an integer. "bad" catches anything else, so that finditer leaves no gap.
_TOKEN = re.compile(
    r"(?P<blank>[%(blank)s]+|%%[^\n]*)"
    r"|(?P<punct><<|>>|=>|[{}\[\]|,/:+\-])"
    r"|(?P<atom>[a-z\xdf-\xf6\xf8-\xff][%(name)s]*)"
    r'|(?P<string>"[^"\\]*(?:\\[\s\S][^"\\]*)*")'
    r"|(?P<float>%(digits)s\.%(digits)s(?:[eE][+-]?%(digits)s)?)"
    r"|(?P<based>%(digits)s\#[0-9a-zA-Z]+(?:_[0-9a-zA-Z]+)*)"
    r"|(?P<int>%(digits)s)"
    r"|(?P<quoted>'[^'\\]*(?:\\[\s\S][^'\\]*)*')"
    r"|(?P<char>\$(?:\\(?:[0-7]{1,3}|x\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|\^[\s\S]|[\s\S])|[\s\S]))"
    r"|(?P<var>[A-Z_\xc0-\xd6\xd8-\xde][%(name)s]*)"
    r"|(?P<opaque><[0-9]+\.[0-9]+\.[0-9]+>|\#(?:Ref|Port|Fun)<[^<>]*>)"
    r"|(?P<dot>\.(?=[%(blank)s%%]|\Z))"
    r"|(?P<other>[#.])"
    r"|(?P<bad>[\s\S])"
    % dict(blank=_BLANK, digits=_DIGITS, name=_NAME_CHARS)
)

_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x\{([0-9a-fA-F]+)\}|x([0-9a-fA-F]{2})|\^([\s\S])|([\s\S]))")
_NAMED_ESCAPES = {
    "n": "\n", "r": "\r", "t": "\t", "v": "\v", "b": "\b", "f": "\f", "e": "\x1b", "s": " ", "d": "\x7f",
}

_EOF = "eof"


def _position(text, offset):
    line = text.count("\n", 0, offset) + 1
    column = offset - text.rfind("\n", 0, offset)
    return line, column


def _error(text, offset, reason):
    line, column = _position(text, offset)
    return ParseError(reason, line, column)


def _show_char(char):
    return "'%s'" % char if char.isprintable() else "U+%04X" % ord(char)


def _unescape(text, start, end):
    """The characters between text[start] and text[end] (exclusive), escapes resolved."""
    body = text[start:end]
    if "\\" not in body:
        return body

    def one(match):
        octal, braced, two_hex, control, other = match.groups()
        if other is not None:
            if other == "x":
                raise _error(text, start + match.start(), "bad \\x escape: use \\xHH or \\x{H...}")
            return _NAMED_ESCAPES.get(other, other)
        if control is not None:
            return chr(ord(control) & 31)
        code = int(octal, 8) if octal is not None else int(braced or two_hex, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise _error(text, start + match.start(), "\\x{%X} is not a Unicode character" % code)
        return chr(code)

    return _ESCAPE.sub(one, body)


def _tokenize(text):
    """A list of (kind, value, start, end): kind is atom, string, number, var, opaque, reserved, dot,
    the punctuation itself, or eof for the end of the input."""
    tokens = []
    append = tokens.append
    for found in _TOKEN.finditer(text):
        kind = found.lastgroup
        if kind == "blank":
            continue
        start, end = found.span()
        if kind == "punct" or kind == "other":
            append((found.group(), None, start, end))
            continue
        source = found.group()
        if kind == "atom":
            value = Atom(source)
            if source in _RESERVED:
                kind = "reserved"
        elif kind == "string":
            value = _unescape(text, start + 1, end - 1)
        elif kind == "int":
            kind, value = "number", int(source.replace("_", ""))
        elif kind == "float":
            kind, value = "number", float(source.replace("_", ""))
        elif kind == "based":
            kind, value = "number", _based_integer(text, start, source)
        elif kind == "quoted":
            kind, value = "atom", Atom(_unescape(text, start + 1, end - 1))
        elif kind == "char":
            kind, value = "number", (ord(_unescape(text, start + 1, end)) if source[1] == "\\" else ord(source[1]))
        elif kind == "opaque":
            value = Opaque(source)
        elif kind == "bad":
            raise _bad_character(text, start)
        else:  # var, dot
            value = source
        append((kind, value, start, end))
    append((_EOF, None, len(text), len(text)))
    return tokens


def _bad_character(text, offset):
    char = text[offset]
    if char == '"':
        return _error(text, offset, "unterminated string")
    if char == "'":
        return _error(text, offset, "unterminated quoted atom")
    if char == "$":
        return _error(text, offset, "'$' at the end of the input: a character is missing")
    return _error(text, offset, "unexpected character %s" % _show_char(char))


def _based_integer(text, offset, source):
    base_text, digits = source.replace("_", "").split("#")
    base = int(base_text)
    if not 2 <= base <= 36:
        raise _error(text, offset, "integer base %d is not between 2 and 36" % base)
    try:
        return int(digits, base)
    except ValueError:
        raise _error(text, offset, "%s is not an integer in base %d" % (source, base))


def _join_tail(items, tail):
    """[items | tail] as Erlang builds it: a proper list whenever the tail is one."""
    if isinstance(tail, ImproperList):
        return ImproperList(items + tail, tail.tail)
    if isinstance(tail, list):
        items.extend(tail)
        return items
    if isinstance(tail, str) and not isinstance(tail, (Atom, Opaque)):
        items.extend(ord(char) for char in tail)
        return items
    return ImproperList(items, tail)


class _Parser(object):
    """Recursive descent over the token list; self.index is the next token."""

    def __init__(self, text):
        if not isinstance(text, str):
            raise TypeError("Erlang term text must be a str, not %s: decode it first" % type(text).__name__)
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def next(self):
        token = self.tokens[self.index]
        if token[0] != _EOF:
            self.index += 1
        return token

    def peek(self):
        return self.tokens[self.index][0]

    def fail(self, token, reason):
        return _error(self.text, token[2], reason)

    def describe(self, token):
        kind, value, start, end = token
        if kind == _EOF:
            return "end of input"
        if kind == "dot":
            return "'.'"
        if kind == ".":
            return "'.' with no white space after it"
        source = self.text[start:end]
        if len(source) > 30:
            source = source[:27] + "..."
        labels = {"atom": "atom", "reserved": "reserved word", "var": "variable", "number": "number",
                  "string": "string", "opaque": getattr(value, "kind", "")}
        if kind in labels:
            return "%s %s" % (labels[kind], source)
        return "'%s'" % kind

    def expected(self, token, what):
        return self.fail(token, "expected %s, found %s" % (what, self.describe(token)))

    def unterminated(self, opener, what, closer):
        return self.fail(opener, "unterminated %s: the input ends before its closing '%s'" % (what, closer))

    def element(self, opener, what, closer):
        """A term inside a container that the input must not end in."""
        if self.peek() == _EOF:
            raise self.unterminated(opener, what, closer)
        return self.term()

    def separator(self, opener, what, closer, others=()):
        token = self.next()
        if token[0] == "," or token[0] == closer or token[0] in others:
            return token[0]
        if token[0] == _EOF:
            raise self.unterminated(opener, what, closer)
        expected = " or ".join("'%s'" % choice for choice in (",",) + tuple(others) + (closer,))
        raise self.expected(token, "%s in %s" % (expected, what))

    def term(self):
        token = self.next()
        kind, value = token[0], token[1]
        if kind in ("atom", "number", "opaque"):
            return value
        if kind == "string":
            return self.string_continued(value)
        if kind == "{":
            return self.tuple(token)
        if kind == "[":
            return self.list(token)
        if kind == "<<":
            return self.binary(token)
        if kind == "#":
            return self.map(token)
        if kind in ("-", "+"):
            number = self.next()
            if number[0] != "number":
                raise self.expected(number, "a number after '%s'" % kind)
            return -number[1] if kind == "-" else number[1]
        if kind == "reserved" and value == "fun":
            return self.external_fun(token)
        if kind == "reserved":
            raise self.fail(token, "expected a term, found reserved word %s: quote it ('%s') to make it an atom"
                            % (value, value))
        raise self.expected(token, "a term")

    def string_continued(self, first):
        if self.peek() != "string":
            return first
        parts = [first]
        while self.peek() == "string":
            parts.append(self.next()[1])
        return "".join(parts)

    def tuple(self, opener):
        if self.peek() == "}":
            self.next()
            return ()
        items = []
        while True:
            items.append(self.element(opener, "tuple", "}"))
            if self.separator(opener, "tuple", "}") == "}":
                return tuple(items)

    def list(self, opener):
        if self.peek() == "]":
            self.next()
            return []
        items = []
        while True:
            items.append(self.element(opener, "list", "]"))
            found = self.separator(opener, "list", "]", others=("|",))
            if found == "]":
                return items
            if found == "|":
                tail = self.element(opener, "list", "]")
                token = self.next()
                if token[0] == _EOF:
                    raise self.unterminated(opener, "list", "]")
                if token[0] != "]":
                    raise self.expected(token, "']' after the tail of a list")
                return _join_tail(items, tail)

    def map(self, opener):
        token = self.next()
        if token[0] != "{":
            raise self.expected(token, "'{' after '#'")
        result = Map()
        if self.peek() == "}":
            self.next()
            return result
        originals = {}
        while True:
            key = self.element(opener, "map", "}")
            token = self.next()
            if token[0] == _EOF:
                raise self.unterminated(opener, "map", "}")
            if token[0] != "=>":
                raise self.expected(token, "'=>' after a map key")
            value = self.element(opener, "map", "}")
            if _needs_freezing(key):
                key = Frozen(key)
            elif key in originals and _identity(originals[key]) != _identity(key):
                key = Frozen(key)  # e.g. ok and "ok": equal in Python, two keys in Erlang
            originals[key] = key
            result[key] = value
            if self.separator(opener, "map", "}") == "}":
                return result

    def binary(self, opener):
        if self.peek() == ">>":
            self.next()
            return Binary()
        data = bytearray()
        while True:
            token = self.tokens[self.index]
            if token[0] == _EOF:
                raise self.unterminated(opener, "binary", ">>")
            if token[0] == "number" and isinstance(token[1], int) and self.tokens[self.index + 1][0] in (",", ">>"):
                self.index += 1  # a plain byte, by far the most common segment
                data.append(token[1] & 0xFF)
            else:
                data += self.segment()
            if self.separator(opener, "binary", ">>") == ">>":
                return Binary(data)

    def segment(self):
        token = self.next()
        kind, value = token[0], token[1]
        if kind == "string":
            values = self.string_continued(value)
        elif kind == "number" and isinstance(value, int):
            values = [value]
        elif kind in ("-", "+") and self.peek() == "number" and isinstance(self.tokens[self.index][1], int):
            number = self.next()[1]
            values = [-number if kind == "-" else number]
        else:
            raise self.expected(token, "an integer or a string in a binary")
        size = None
        if self.peek() == ":":
            self.next()
            token = self.next()
            if token[0] != "number" or not isinstance(token[1], int):
                raise self.expected(token, "a segment size")
            size = token[1]
        types = []
        if self.peek() == "/":
            self.next()
            while True:
                token = self.next()
                if token[0] != "atom":
                    raise self.expected(token, "a binary segment type")
                if token[1] not in ("integer", "utf8", "big", "little", "signed", "unsigned"):
                    raise self.fail(token, "binary segment type %s is not supported" % token[1])
                types.append(token[1])
                if self.peek() != "-":
                    break
                self.next()
        if "utf8" in types:
            if size is not None:
                raise self.fail(token, "a utf8 segment cannot have a size")
            codes = [ord(char) for char in values] if isinstance(values, str) else values
            if not all(0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF for code in codes):
                raise self.fail(token, "a utf8 segment holds a number that is not a Unicode character")
            return "".join(map(chr, codes)).encode("utf-8")
        if size is None:
            size = 8
        if size % 8:
            raise self.fail(token, "bitstrings are not supported (a segment of %d bits)" % size)
        if isinstance(values, str):
            if size == 8:
                try:
                    return values.encode("latin-1")
                except UnicodeEncodeError:
                    pass
            values = [ord(char) for char in values]
        order = "little" if "little" in types else "big"
        mask = (1 << size) - 1
        return b"".join((code & mask).to_bytes(size // 8, order) for code in values)

    def external_fun(self, token):
        module, colon, function, slash, arity = [self.next() for step in range(5)]
        if not (module[0] == "atom" and colon[0] == ":" and function[0] == "atom" and slash[0] == "/"
                and arity[0] == "number" and isinstance(arity[1], int)):
            raise self.fail(token, "expected fun Module:Function/Arity")
        return Opaque("fun %s:%s/%d" % (_format_atom(module[1]), _format_atom(function[1]), arity[1]))

    def parse_one(self):
        term = self.term()
        if self.peek() == "dot":
            self.next()
        token = self.next()
        if token[0] != _EOF:
            raise self.expected(token, "end of input after the term")
        return term

    def parse_all(self):
        terms = []
        while self.peek() != _EOF:
            terms.append(self.term())
            token = self.next()
            if token[0] != "dot":
                raise self.expected(token, "'.' after the term")
        return terms

    def run(self, method):
        try:
            return method()
        except RecursionError:
            raise self.fail(self.tokens[self.index], "the term is nested too deeply to read")


def parse(text):
    """The one term in text (an optional '.' may end it), e.g. the ~0p output of a call."""
    parser = _Parser(text)
    return parser.run(parser.parse_one)


def parse_all(text):
    """The terms of a file:consult/1 file: each term ends with '.' and white space (or the end)."""
    parser = _Parser(text)
    return parser.run(parser.parse_all)


# ---------------------------------------------------------------------------------------------------
# Writing

_PLAIN_ATOM = re.compile(r"[a-z][a-zA-Z0-9_@]*\Z")
_PLAIN_TEXT = {'"': re.compile(r'[ !#-\[\]-~]*\Z'), "'": re.compile(r"[ -&(-\[\]-~]*\Z")}
_CONTROL_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(text, quote):
    if _PLAIN_TEXT[quote].match(text):
        return text
    out = []
    for char in text:
        if char == quote or char == "\\":
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        elif char in _CONTROL_ESCAPES:
            out.append(_CONTROL_ESCAPES[char])
        else:
            code = ord(char)
            if 0xD800 <= code <= 0xDFFF:
                raise ValueError("%r holds the lone surrogate U+%04X, which Erlang text cannot hold" % (text, code))
            out.append("\\x{%X}" % code)
    return "".join(out)


def _format_atom(name):
    if _PLAIN_ATOM.match(name) and name not in _QUOTED_ON_OUTPUT:
        return name
    return "'%s'" % _escape(name, "'")


def _is_text(text):
    return text.replace("\n", "").replace("\t", "").replace("\r", "").isprintable()


def _format_binary(data):
    if not data:
        return "<<>>"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _is_text(text):
        if all(char < "\x80" for char in text):
            return '<<"%s">>' % _escape(text, '"')
        return '<<"%s"/utf8>>' % _escape(text, '"')
    return "<<%s>>" % ",".join(str(byte) for byte in data)


def _format_float(number):
    if math.isnan(number) or math.isinf(number):
        raise ValueError("Erlang has no float %r" % number)
    mantissa, marker, exponent = repr(number).partition("e")
    if "." not in mantissa:
        mantissa += ".0"  # Erlang needs digits on both sides of the point: 1e-05 -> 1.0e-5
    return mantissa + ("e%d" % int(exponent) if marker else "")


def format_term(value):
    """Erlang term text for a Python value, for an expression or a consult file.

    Atom -> atom, str -> "charlist", bytes/Binary -> binary, True/False -> true/false, None -> undefined,
    tuple -> tuple, list -> list, ImproperList -> [a|T], dict/Map -> map, Frozen -> its value.
    Opaque values and other types raise TypeError; NaN, infinity and lone surrogates raise ValueError.
    """
    if isinstance(value, Frozen):
        return format_term(value.value)
    if isinstance(value, Atom):
        return _format_atom(value)
    if isinstance(value, Opaque):
        raise TypeError("a %s (%s) cannot be written as Erlang term text" % (value.kind, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "undefined"
    if isinstance(value, str):
        return '"%s"' % _escape(value, '"')
    if isinstance(value, (bytes, bytearray)):
        return _format_binary(bytes(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, ImproperList):
        if not value:
            return format_term(value.tail)
        return "[%s|%s]" % (",".join(format_term(item) for item in value), format_term(value.tail))
    if isinstance(value, list):
        return "[%s]" % ",".join(format_term(item) for item in value)
    if isinstance(value, tuple):
        return "{%s}" % ",".join(format_term(item) for item in value)
    if isinstance(value, dict):
        return "#{%s}" % ",".join("%s => %s" % (format_term(key), format_term(item)) for key, item in value.items())
    raise TypeError("%s cannot be written as an Erlang term" % type(value).__name__)


# ---------------------------------------------------------------------------------------------------
# Plain values for results


def _plain_key(key):
    if isinstance(key, str):
        return str(key)
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode("utf-8", errors="replace")
    return format_term(key)


def to_plain(term):
    """The term as JSON-ready Python: atoms, pids and the like become str, binaries their UTF-8 text,
    tuples lists, an ImproperList a list with its tail as the last element, map keys str (atoms,
    strings and binaries by their text, other keys as Erlang term text). Later keys win when two
    keys end up the same string."""
    if isinstance(term, Frozen):
        return to_plain(term.value)
    if isinstance(term, str):
        return str(term)
    if isinstance(term, (bytes, bytearray)):
        return bytes(term).decode("utf-8", errors="replace")
    if term is None or isinstance(term, (bool, int, float)):
        return term
    if isinstance(term, ImproperList):
        return [to_plain(item) for item in term] + [to_plain(term.tail)]
    if isinstance(term, (list, tuple)):
        return [to_plain(item) for item in term]
    if isinstance(term, dict):
        return dict((_plain_key(key), to_plain(value)) for key, value in term.items())
    raise TypeError("%s is not an Erlang term" % type(term).__name__)
