# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a relup review needs from a .beam file, read without an Erlang VM.

A BEAM file is an IFF container: "FOR1", a 32-bit size, "BEAM", then chunks (4-byte id, 32-bit
size, data padded to 4 bytes); a whole file may also be gzip-compressed (erlc +compressed).

read_beam(data) -> Beam(module, md5, exports, behaviours):
  module      the module name (first atom of the AtU8/Atom chunk)
  md5         hex digest with the meaning of beam_lib:md5/1 and Mod:module_info(md5): MD5 over the
              chunks Atom/AtU8, Code, StrT, ImpT, ExpT, FunT, LitT, Meta in that order (those present;
              Meta exists from OTP 25 on), with each FunT entry's old-uniq word zeroed. Debug info, attributes (so -vsn) and
              compile info are not part of it: two builds of the same code have the same md5.
  exports     frozenset of (name, arity)
  behaviours  tuple of the behaviour/behavior attributes, e.g. ("supervisor",)

A supervisor's child specs come from its init/1, so "init/1 of a supervisor changed" is read here
as "the md5 of a module with behaviour supervisor changed": any code change of that module counts.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from collections import namedtuple

__all__ = ["Beam", "BeamError", "read_beam", "read_beam_file", "read_ebin"]

Beam = namedtuple("Beam", "module md5 exports behaviours")

# The order beam_lib hashes them in (beam_lib:md5_chunks/0 of OTP 25+; older files have no Meta).
MD5_CHUNKS = (b"Atom", b"AtU8", b"Code", b"StrT", b"ImpT", b"ExpT", b"FunT", b"LitT", b"Meta")
FUNT_ENTRY = 24  # function, arity, label, index, free variables, old uniq: six 32-bit words


class BeamError(ValueError):
    """Bytes that are not a BEAM file this module can read."""


def _chunks(data):
    """{chunk id: bytes} of a (possibly gzip-compressed) BEAM file."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise BeamError("not a BEAM file: bad gzip data ({0})".format(error))
    if len(data) < 12 or data[:4] != b"FOR1" or data[8:12] != b"BEAM":
        raise BeamError("not a BEAM file: no FOR1/BEAM header")
    end = 8 + struct.unpack(">I", data[4:8])[0]
    if end > len(data):
        raise BeamError("truncated: the header says {0} bytes, the file has {1}".format(end, len(data)))
    chunks = {}
    offset = 12
    while offset + 8 <= end:
        chunk_id, size = data[offset:offset + 4], struct.unpack(">I", data[offset + 4:offset + 8])[0]
        start = offset + 8
        if start + size > end:
            raise BeamError("chunk {0!r} at byte {1} runs past the end of the file".format(chunk_id, offset))
        chunks[chunk_id] = data[start:start + size]
        offset = start + (size + 3) // 4 * 4
    return chunks


def _compact_length(data, offset):
    """An atom length in the compact encoding of OTP 28+ atom tables: (length, next offset)."""
    first = data[offset]
    if not first & 0x08:
        return first >> 4, offset + 1
    if not first & 0x10:
        return ((first & 0xE0) << 3) | data[offset + 1], offset + 2
    raise BeamError("atom length encoding {0:#x} not supported".format(first))


def _atoms(chunks):
    """The atom table as a list; index 1 of the BEAM file is element 0."""
    table, encoding = chunks.get(b"AtU8"), "utf-8"
    if table is None:
        table, encoding = chunks.get(b"Atom"), "latin-1"
    if table is None:
        raise BeamError("no atom table (AtU8 or Atom chunk)")
    count = struct.unpack(">i", table[:4])[0]
    atoms, offset = [], 4
    for _index in range(abs(count)):
        if count < 0:
            length, offset = _compact_length(table, offset)
        else:
            length, offset = table[offset], offset + 1
        atoms.append(table[offset:offset + length].decode(encoding))
        offset += length
    return atoms


def _exports(chunks, atoms):
    table = chunks.get(b"ExpT")
    if table is None:
        raise BeamError("no export table (ExpT chunk)")
    count = struct.unpack(">I", table[:4])[0]
    entries = struct.unpack(">{0}I".format(3 * count), table[4:4 + 12 * count])
    return frozenset((atoms[entries[i] - 1], entries[i + 1]) for i in range(0, len(entries), 3))


def _md5(chunks):
    digest = hashlib.md5()
    for chunk_id in MD5_CHUNKS:
        data = chunks.get(chunk_id)
        if data is None:
            continue
        if chunk_id == b"FunT":
            # beam_lib zeroes each entry's old uniq, which differs between identical compilations.
            parts = [data[:4]]
            offset = 4
            while offset + FUNT_ENTRY <= len(data):
                parts.append(data[offset:offset + FUNT_ENTRY - 4] + b"\0\0\0\0")
                offset += FUNT_ENTRY
            parts.append(data[offset:])
            data = b"".join(parts)
        digest.update(data)
    return digest.hexdigest()


def _behaviours(chunks):
    attributes = chunks.get(b"Attr")
    if not attributes:
        return ()
    term = _Etf(attributes).read()
    found = []
    for attribute in term if isinstance(term, list) else ():
        if isinstance(attribute, tuple) and len(attribute) == 2 and attribute[0] in ("behaviour", "behavior"):
            found.extend(str(name) for name in attribute[1] if isinstance(name, str))
    return tuple(found)


def read_beam(data):
    """Beam(module, md5, exports, behaviours) of the bytes of a .beam file (see the module doc)."""
    chunks = _chunks(bytes(data))
    for mandatory in (b"Code", b"ExpT", b"ImpT", b"StrT"):
        if mandatory not in chunks:
            raise BeamError("no {0} chunk".format(mandatory.decode()))
    atoms = _atoms(chunks)
    return Beam(atoms[0], _md5(chunks), _exports(chunks, atoms), _behaviours(chunks))


def read_beam_file(path):
    with open(path, "rb") as beam_file:
        data = beam_file.read()
    try:
        return read_beam(data)
    except (BeamError, IndexError, struct.error, UnicodeDecodeError) as error:
        raise BeamError("{0}: {1}".format(path, error))


def read_ebin(ebin):
    """{module: Beam} of every .beam file in the directory ebin."""
    modules = {}
    for name in sorted(os.listdir(ebin)):
        if name.endswith(".beam"):
            beam = read_beam_file(os.path.join(ebin, name))
            modules[beam.module] = beam
    return modules


class _Etf(object):
    """A reader of the external term format, as much of it as attribute values use. Atoms come
    out as str, strings and lists as list, tuples as tuple, binaries as bytes."""

    def __init__(self, data):
        self.data = data
        self.offset = 0

    def take(self, count):
        if self.offset + count > len(self.data):
            raise BeamError("attribute term ends early")
        piece = self.data[self.offset:self.offset + count]
        self.offset += count
        return piece

    def unsigned(self, size):
        return int.from_bytes(self.take(size), "big")

    def read(self):
        if self.unsigned(1) != 131:
            raise BeamError("attribute chunk is not in the external term format")
        return self.term()

    def terms(self, count):
        return [self.term() for _index in range(count)]

    def term(self):
        tag = self.unsigned(1)
        if tag == 97:  # SMALL_INTEGER_EXT
            return self.unsigned(1)
        if tag == 98:  # INTEGER_EXT
            return struct.unpack(">i", self.take(4))[0]
        if tag in (110, 111):  # SMALL_BIG_EXT, LARGE_BIG_EXT
            size = self.unsigned(1 if tag == 110 else 4)
            sign = self.unsigned(1)
            value = int.from_bytes(self.take(size), "little")
            return -value if sign else value
        if tag == 70:  # NEW_FLOAT_EXT
            return struct.unpack(">d", self.take(8))[0]
        if tag in (100, 118):  # ATOM_EXT, ATOM_UTF8_EXT
            return self.take(self.unsigned(2)).decode("latin-1" if tag == 100 else "utf-8")
        if tag in (115, 119):  # SMALL_ATOM_EXT, SMALL_ATOM_UTF8_EXT
            return self.take(self.unsigned(1)).decode("latin-1" if tag == 115 else "utf-8")
        if tag in (104, 105):  # SMALL_TUPLE_EXT, LARGE_TUPLE_EXT
            return tuple(self.terms(self.unsigned(1 if tag == 104 else 4)))
        if tag == 106:  # NIL_EXT
            return []
        if tag == 107:  # STRING_EXT
            return list(self.take(self.unsigned(2)))
        if tag == 108:  # LIST_EXT: elements, then a tail (NIL for a proper list)
            items = self.terms(self.unsigned(4))
            tail = self.term()
            return items if tail == [] else items + [tail]
        if tag == 109:  # BINARY_EXT
            return self.take(self.unsigned(4))
        if tag == 77:  # BIT_BINARY_EXT
            size = self.unsigned(4)
            self.take(1)
            return self.take(size)
        if tag == 116:  # MAP_EXT: key, value, key, value...; read as a tuple of pairs
            items = self.terms(2 * self.unsigned(4))
            return tuple(zip(items[0::2], items[1::2]))
        raise BeamError("attribute term tag {0} not supported".format(tag))
