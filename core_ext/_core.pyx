# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True, embedsignature=True, auto_pickle=False
"""The accelerated core, compiled: a mirror of ``core_ext._core_py``.

``core_ext/_core_py.py`` is the specification (its module docstring defines every
canonical form); this module returns the same values for the same inputs, faster. What
makes it fast (see MEASURED.md, "A Cython core prototype"):

* dict lookups use the key objects orjson itself produced: orjson shares key strings
  across decoded dicts, so a lookup with *its* object is a pointer compare where ours
  would be a string compare. Each path component learns the dict's own key object and
  re-learns it every ``_RELEARN_EVERY`` reads; a lookup with any equal key is still
  correct, so the cache only ever changes speed;
* canonical text of an ASCII string reads the buffer directly and returns the same
  object when nothing needs stripping; common non-ASCII text (Latin-1, CJK ideographs,
  CJK punctuation, full-width forms) skips the NFC call because it is NFC already;
* the hash input is built in a stack buffer (the heap only for huge values) and the
  buyer identity is normalised straight into it, without an intermediate string;
* XXH3 is inlined from ``core_ext/xxhash.h`` (xxHash 0.8.4, BSD-2-Clause, Yann Collet;
  vendored unmodified from the python-xxhash 4.1.0 sdist, the library the ``xxhash``
  package wraps, so the hashes are the package's): calling the package from here would
  add a bytes object and a Python call per hash (~45 ns, two hashes per event);
* status lookups use a small C table keyed by UTF-8 bytes (no SipHash of fresh strings);
* rows are untracked from the cyclic GC at once: they hold only ints, strs and None.

Events are decoded JSON: values are read through borrowed references, which is safe
because nothing here runs code that could change an event while it is being read.

Construction-time validation (status maps, buyer pairs) and the rare non-ASCII identity
normalisation reuse the specification's own helpers, so the two cannot drift there.
"""

cimport cython
from cpython.object cimport PyObject
from libc.math cimport floor, isfinite
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove

import unicodedata

from core_ext._core_py import IDENTITY_KINDS, _buyer_pairs, _canonical_table, _NORMALISERS


cdef extern from *:
    """
    #define XXH_INLINE_ALL
    #include "xxhash.h"
    """
    uint64_t XXH3_64bits(const void* data, size_t length) nogil


cdef extern from "Python.h":
    object PyLong_FromUnsignedLongLong(unsigned long long value)
    bint PyUnicode_IS_ASCII(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyUnicode_Check(object o)
    bint PyDict_Check(PyObject* o)
    bint PyList_Check(PyObject* o)
    bint PyLong_Check(object o)
    bint PyBool_Check(object o)
    bint PyFloat_Check(object o)
    double PyFloat_AS_DOUBLE(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index)
    bint Py_UNICODE_ISSPACE(Py_UCS4 ch)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    object PyUnicode_Substring(object s, Py_ssize_t start, Py_ssize_t end)
    object PyUnicode_FromObject(object o)
    object PyUnicode_DecodeUTF8(const char* data, Py_ssize_t size, const char* errors)
    object PyUnicode_AsEncodedString(object s, const char* encoding, const char* errors)
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size)
    Py_ssize_t PyUnicode_FindChar(object s, Py_UCS4 ch, Py_ssize_t start, Py_ssize_t end, int direction) except -2
    int PyUnicode_Compare(object a, object b)  # two exact strs: cannot fail
    Py_hash_t PyObject_Hash(PyObject* o)  # only called on exact strs: cannot fail
    PyObject* PyDict_GetItemWithError(PyObject* d, PyObject* key) except? NULL
    int PyDict_Next(PyObject* d, Py_ssize_t* pos, PyObject** key, PyObject** value)
    Py_ssize_t PyList_GET_SIZE(PyObject* o)
    PyObject* PyList_GET_ITEM(PyObject* o, Py_ssize_t i)
    void PyList_SET_ITEM(object o, Py_ssize_t i, object item)
    list PyList_New(Py_ssize_t size)
    PyObject* PyTuple_GET_ITEM(object o, Py_ssize_t i)
    char* PyBytes_AS_STRING(object o)
    Py_ssize_t PyBytes_GET_SIZE(object o)
    object PyBytes_FromStringAndSize(const char* data, Py_ssize_t size)
    object PyLong_FromDouble(double value)
    void PyObject_GC_UnTrack(void* o)
    void Py_INCREF(object o)
    void Py_XDECREF(PyObject* o)
    void PyErr_Clear()


IMPLEMENTATION = "cython"
CODE_UNKNOWN = -1
CODE_MISSING = -2

__all__ = [
    "CODE_MISSING",
    "CODE_UNKNOWN",
    "IDENTITY_KINDS",
    "IMPLEMENTATION",
    "SourceSpec",
    "StatusMap",
    "buyer_key",
    "canonical_text",
    "extract",
    "fingerprint",
    "key_token",
    "normalise_identity",
    "process_batch",
    "set_buyer_salt",
]

cdef object _normalize = unicodedata.normalize
cdef object _CODE_UNKNOWN = CODE_UNKNOWN
cdef object _CODE_MISSING = CODE_MISSING
cdef object _ZERO = 0
cdef object _ONE = 1

cdef enum:
    _STACK_BYTES = 512
    _RELEARN_EVERY = 1024
    _KIND_PHONE = 0
    _KIND_FOLDED = 1
    _KIND_ADDRESS = 2

cdef uint64_t _MAX_FIELD_BYTES = 0xFFFFFFFF

#: Code point ranges [start, stop) of characters that are NFC on their own, have
#: combining class 0 and never compose with a preceding character: a string of only
#: these is NFC already (tests/test_core_ext.py checks every one against unicodedata).
_NFC_SAFE_RANGES = ((0x0000, 0x0300), (0x3000, 0x302A), (0x4E00, 0xA000), (0xFF00, 0xFFF0))


# --- canonical text -------------------------------------------------------------------


cdef inline bint _ascii_space(Py_UCS4 c) noexcept nogil:
    return c == 32 or 9 <= c <= 13 or 28 <= c <= 31


cdef inline bint _nfc_already(object text):
    cdef int kind = PyUnicode_KIND(text)
    if kind == 1:
        return True
    if kind != 2:
        return False
    cdef const unsigned short* data = <const unsigned short*>PyUnicode_DATA(text)
    cdef Py_ssize_t i, n = PyUnicode_GET_LENGTH(text)
    cdef unsigned short c
    for i in range(n):
        c = data[i]
        if c < 0x0300 or (0x4E00 <= c < 0xA000) or (0x3000 <= c < 0x302A) or (0xFF00 <= c < 0xFFF0):
            continue
        return False
    return True


cdef object _canonical_str(object text):
    """Canonical text of an exact str (NFC + strip; empty -> None)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef Py_ssize_t start = 0, end = n
    cdef const unsigned char* ascii
    cdef int kind
    cdef void* data
    if PyUnicode_IS_ASCII(text):
        ascii = <const unsigned char*>PyUnicode_DATA(text)
        while start < end and _ascii_space(ascii[start]):
            start += 1
        while end > start and _ascii_space(ascii[end - 1]):
            end -= 1
    else:
        if not _nfc_already(text):
            text = _normalize("NFC", text)
            n = PyUnicode_GET_LENGTH(text)
            end = n
        kind = PyUnicode_KIND(text)
        data = PyUnicode_DATA(text)
        while start < end and Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, start)):
            start += 1
        while end > start and Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, end - 1)):
            end -= 1
    if start == end:
        return None
    if start == 0 and end == n:
        return text
    return PyUnicode_Substring(text, start, end)


cdef inline object _canonical(PyObject* value):
    """Canonical text of a borrowed value (NULL = missing)."""
    cdef Py_ssize_t n
    cdef const unsigned char* ascii
    if value != NULL and PyUnicode_CheckExact(<object>value) and PyUnicode_IS_ASCII(<object>value):
        # The common case, inlined: an ASCII str with nothing to strip is its own canonical text.
        n = PyUnicode_GET_LENGTH(<object>value)
        ascii = <const unsigned char*>PyUnicode_DATA(<object>value)
        if n > 0 and not _ascii_space(ascii[0]) and not _ascii_space(ascii[n - 1]):
            return <object>value
    return _canonical_any(value)


cdef object _canonical_any(PyObject* value):
    if value == NULL:
        return None
    cdef object obj = <object>value
    cdef double number
    if PyUnicode_CheckExact(obj):
        return _canonical_str(obj)
    if obj is None:
        return None
    if PyBool_Check(obj):
        return "true" if obj is True else "false"
    if PyLong_Check(obj):
        return int.__repr__(obj)
    if PyFloat_Check(obj):
        number = PyFloat_AS_DOUBLE(obj)
        if isfinite(number) and floor(number) == number:
            return int.__repr__(PyLong_FromDouble(number))
        return float.__repr__(float(number))
    if PyUnicode_Check(obj):
        return _canonical_str(PyUnicode_FromObject(obj))
    return None


def canonical_text(value):
    """The canonical text of a scalar JSON value, or ``None`` (see ``core_ext._core_py``)."""
    return _canonical(<PyObject*>value)


# --- the hash buffer ------------------------------------------------------------------


cdef struct _Buffer:
    char* data
    Py_ssize_t length
    Py_ssize_t capacity
    bint on_heap


cdef inline void _buffer_init(_Buffer* buf, char* stack) noexcept:
    buf.data = stack
    buf.length = 0
    buf.capacity = _STACK_BYTES
    buf.on_heap = False


cdef inline void _buffer_free(_Buffer* buf) noexcept:
    if buf.on_heap:
        free(buf.data)
        buf.on_heap = False


cdef int _buffer_grow(_Buffer* buf, Py_ssize_t extra) except -1:
    cdef Py_ssize_t needed = buf.length + extra
    if needed <= buf.capacity:
        return 0
    cdef Py_ssize_t capacity = max(needed, 2 * buf.capacity)
    cdef char* data
    if buf.on_heap:
        data = <char*>realloc(buf.data, capacity)
    else:
        data = <char*>malloc(capacity)
        if data != NULL:
            memcpy(data, buf.data, buf.length)
    if data == NULL:
        raise MemoryError()
    buf.data = data
    buf.capacity = capacity
    buf.on_heap = True
    return 0


cdef inline void _put_length(char* at, uint64_t n) noexcept:
    at[0] = <char>(n & 0xFF)
    at[1] = <char>((n >> 8) & 0xFF)
    at[2] = <char>((n >> 16) & 0xFF)
    at[3] = <char>((n >> 24) & 0xFF)


cdef inline int _put_bytes(_Buffer* buf, const char* data, Py_ssize_t n) except -1:
    if <uint64_t>n >= _MAX_FIELD_BYTES:
        raise OverflowError("a hashed field must be shorter than 4 GiB")
    if buf.length + 4 + n > buf.capacity:
        _buffer_grow(buf, 4 + n)
    _put_length(buf.data + buf.length, <uint64_t>n)
    memcpy(buf.data + buf.length + 4, data, n)
    buf.length += 4 + n
    return 0


cdef inline int _put_text(_Buffer* buf, object text) except -1:
    """Append one field: length-prefixed UTF-8, or ff ff ff ff for None."""
    cdef Py_ssize_t n
    cdef const char* data
    if text is None:
        _buffer_grow(buf, 4)
        _put_length(buf.data + buf.length, 0xFFFFFFFF)
        buf.length += 4
        return 0
    if not PyUnicode_Check(text):
        raise TypeError(f"a hashed field must be a str or None, not {type(text).__name__}")
    if PyUnicode_IS_ASCII(text):
        return _put_bytes(buf, <const char*>PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text))
    data = PyUnicode_AsUTF8AndSize(text, &n)
    if data != NULL:
        return _put_bytes(buf, data, n)
    PyErr_Clear()  # lone surrogates: encode them as the spec does
    encoded = PyUnicode_AsEncodedString(text, "utf-8", "surrogatepass")
    return _put_bytes(buf, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded))


cdef inline object _hash(_Buffer* buf):
    return PyLong_FromUnsignedLongLong(XXH3_64bits(buf.data, buf.length))


# --- buyer identities -----------------------------------------------------------------


cdef int _kind_code(object kind) except -1:
    if kind == "phone":
        return _KIND_PHONE
    if kind == "phone_hash" or kind == "device" or kind == "buyer_id":
        return _KIND_FOLDED
    if kind == "address":
        return _KIND_ADDRESS
    raise ValueError(
        f"unknown buyer identity kind {kind!r}; expected one of {', '.join(sorted(IDENTITY_KINDS))}"
    )


cdef int _put_identity(_Buffer* buf, int kind, object kind_name, object text) except -1:
    """Append the normalised identity of canonical ``text`` as one field.

    Returns 1, or 0 (buffer unchanged) when the identity is empty.
    """
    cdef Py_ssize_t start = buf.length
    cdef Py_ssize_t i, n, m = 0
    cdef const unsigned char* src
    cdef char* dst
    cdef unsigned char c
    cdef object normalised
    cdef const char* utf8
    _buffer_grow(buf, 4)
    buf.length += 4
    if PyUnicode_IS_ASCII(text):
        n = PyUnicode_GET_LENGTH(text)
        src = <const unsigned char*>PyUnicode_DATA(text)
        _buffer_grow(buf, n)
        dst = buf.data + buf.length
        if kind == _KIND_PHONE:
            for i in range(n):
                c = src[i]
                if 48 <= c <= 57:
                    dst[m] = <char>c
                    m += 1
            if m >= 4 and dst[0] == b'0' and dst[1] == b'0' and dst[2] == b'8' and dst[3] == b'6':
                memmove(dst, dst + 4, m - 4)
                m -= 4
            elif m == 13 and dst[0] == b'8' and dst[1] == b'6':
                memmove(dst, dst + 2, m - 2)
                m -= 2
            if m < 5:
                m = 0
        elif kind == _KIND_FOLDED:
            for i in range(n):
                c = src[i]
                dst[i] = <char>(c + 32 if 65 <= c <= 90 else c)
            m = n
        else:
            for i in range(n):
                c = src[i]
                if 65 <= c <= 90:
                    dst[m] = <char>(c + 32)
                    m += 1
                elif 97 <= c <= 122 or 48 <= c <= 57:
                    dst[m] = <char>c
                    m += 1
    else:
        normalised = _NORMALISERS[kind_name](text)
        if PyUnicode_IS_ASCII(normalised):
            utf8 = <const char*>PyUnicode_DATA(normalised)
            m = PyUnicode_GET_LENGTH(normalised)
        else:
            utf8 = PyUnicode_AsUTF8AndSize(normalised, &m)
            if utf8 == NULL:
                PyErr_Clear()
                normalised = PyUnicode_AsEncodedString(normalised, "utf-8", "surrogatepass")
                utf8 = PyBytes_AS_STRING(normalised)
                m = PyBytes_GET_SIZE(normalised)
        _buffer_grow(buf, m)
        memcpy(buf.data + buf.length, utf8, m)
    if m == 0:
        buf.length = start
        return 0
    if <uint64_t>m >= _MAX_FIELD_BYTES:
        buf.length = start
        raise OverflowError("a hashed field must be shorter than 4 GiB")
    _put_length(buf.data + start, <uint64_t>m)
    buf.length += m
    return 1


def normalise_identity(str kind, value):
    """The normalised buyer identity of ``value`` for ``kind``; ``""`` when there is none.

    Raises:
        ValueError: ``kind`` is not one of the identity kinds.
    """
    cdef int code = _kind_code(kind)
    text = _canonical(<PyObject*>value)
    if text is None:
        return ""
    cdef char stack[_STACK_BYTES]
    cdef _Buffer buf
    _buffer_init(&buf, stack)
    try:
        if not _put_identity(&buf, code, kind, text):
            return ""
        return PyUnicode_DecodeUTF8(buf.data + 4, buf.length - 4, "surrogatepass")
    finally:
        _buffer_free(&buf)


cdef object _salt = None  # the buyer-key salt (a str) once set_buyer_salt gave one


def set_buyer_salt(str salt not None):
    """Salt every buyer key computed from now on in this process (``""``: no salt)."""
    global _salt
    _salt = salt if salt else None


def key_token(key):
    """The token that stands for buyer key ``key`` (``"#bk:"`` + 16 hex digits)."""
    return f"#bk:{key:016x}"


cdef object _token_key(object text):
    """The key a token spells, 0 when ``text`` is not a token (see ``_core_py``)."""
    cdef str t = <str>text
    if len(t) == 20 and t.startswith("#bk:"):
        digits = t[4:]
        for c in digits:
            if c not in "0123456789abcdef":
                return _ZERO
        key = int(digits, 16)
        return key if key else _ONE
    return _ZERO


def buyer_key(str tenant, str kind, value):
    """The buyer-group key of a buyer identity; 0 when ``value`` names no buyer.

    Raises:
        ValueError: ``kind`` is not one of the identity kinds.
    """
    cdef int code = _kind_code(kind)
    text = _canonical(<PyObject*>value)
    if text is None:
        return 0
    if (<str>text).startswith("#"):
        token = _token_key(text)
        if token:
            return token
    cdef char stack[_STACK_BYTES]
    cdef _Buffer buf
    _buffer_init(&buf, stack)
    try:
        if _salt is not None:
            _put_text(&buf, _salt)
        _put_text(&buf, tenant)
        _put_text(&buf, kind)
        if not _put_identity(&buf, code, kind, text):
            return 0
        result = _hash(&buf)
        return _ONE if result == 0 else result
    finally:
        _buffer_free(&buf)


def fingerprint(str tenant, str source, event_id, order_id, raw_status):
    """The de-duplication key of an event: XXH3-64 of its length-prefixed fields."""
    cdef char stack[_STACK_BYTES]
    cdef _Buffer buf
    _buffer_init(&buf, stack)
    try:
        _put_text(&buf, tenant)
        _put_text(&buf, source)
        _put_text(&buf, _canonical(<PyObject*>event_id))
        _put_text(&buf, _canonical(<PyObject*>order_id))
        _put_text(&buf, _canonical(<PyObject*>raw_status))
        return _hash(&buf)
    finally:
        _buffer_free(&buf)


def _encode(fields):
    """The injective length-prefixed encoding of ``fields`` (exposed for the tests)."""
    cdef char stack[_STACK_BYTES]
    cdef _Buffer buf
    _buffer_init(&buf, stack)
    try:
        for field in fields:
            _put_text(&buf, field)
        return PyBytes_FromStringAndSize(buf.data, buf.length)
    finally:
        _buffer_free(&buf)


# --- paths ----------------------------------------------------------------------------


@cython.final
cdef class _Path:
    """A parsed path: a literal, or components with their list index and learned key.

    ``optional``: the path ended in ``?`` (dropped from the components; ``text`` keeps it).
    """

    cdef readonly str text
    cdef bint is_literal
    cdef bint optional
    cdef object literal
    cdef Py_ssize_t n
    cdef tuple keys            # our own key strings
    cdef list seen             # the key objects lookups use (learned from the events)
    cdef Py_ssize_t* indexes   # list index per component; -1 when not all ASCII digits
    cdef int* relearn_in       # reads left before the component re-learns its key object

    def __cinit__(self, text):
        if not isinstance(text, str):
            raise TypeError(f"a path must be a str, not {type(text).__name__}")
        self.text = text
        self.is_literal = self.text.startswith("=")
        if self.is_literal and self.text.endswith("?"):
            raise ValueError(f"a literal cannot be optional: {self.text!r} ends in '?'")
        self.optional = not self.is_literal and self.text.endswith("?")
        literal = self.text[1:]
        self.literal = _canonical(<PyObject*>literal) if self.is_literal else None
        body = self.text[:-1] if self.optional else self.text
        parts = [] if self.is_literal else body.split(".")
        self.n = len(parts)
        self.keys = tuple(parts)
        self.seen = list(parts)
        self.indexes = <Py_ssize_t*>malloc(max(self.n, 1) * sizeof(Py_ssize_t))
        self.relearn_in = <int*>malloc(max(self.n, 1) * sizeof(int))
        if self.indexes == NULL or self.relearn_in == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(self.n):
            part = parts[i]
            self.relearn_in[i] = 0
            self.indexes[i] = -1
            if part.isascii() and part.isdigit():
                index = int(part)
                if index < (<Py_ssize_t>1 << 62):
                    self.indexes[i] = index

    def __dealloc__(self):
        free(self.indexes)
        free(self.relearn_in)

    def __repr__(self):
        return f"_Path({self.text!r})"

    cdef void _learn(self, Py_ssize_t i, PyObject* node) noexcept:
        """Adopt ``node``'s own key object for component ``i`` (it holds an equal key)."""
        cdef Py_ssize_t pos = 0
        cdef PyObject* key
        cdef PyObject* value
        cdef PyObject* want = PyTuple_GET_ITEM(self.keys, i)
        cdef PyObject* current = PyList_GET_ITEM(<PyObject*>self.seen, i)
        cdef Py_hash_t want_hash = PyObject_Hash(want)
        self.relearn_in[i] = _RELEARN_EVERY
        while PyDict_Next(node, &pos, &key, &value):
            if key == current:
                return
            if PyUnicode_CheckExact(<object>key) and PyObject_Hash(key) == want_hash:
                if PyUnicode_Compare(<object>key, <object>want) == 0:
                    self.seen[i] = <object>key
                    return

    cdef inline PyObject* read(self, PyObject* node) except? NULL:
        """The borrowed value at this path in ``node``; NULL when missing."""
        if self.is_literal:
            return <PyObject*>self.literal
        cdef Py_ssize_t i, index
        cdef PyObject* value
        for i in range(self.n):
            if PyDict_Check(node):
                value = PyDict_GetItemWithError(node, PyList_GET_ITEM(<PyObject*>self.seen, i))
                if value == NULL:
                    return NULL
                if self.relearn_in[i] == 0:
                    self._learn(i, node)
                else:
                    self.relearn_in[i] -= 1
                node = value
            elif PyList_Check(node):
                index = self.indexes[i]
                if index < 0 or index >= PyList_GET_SIZE(node):
                    return NULL
                node = PyList_GET_ITEM(node, index)
            else:
                return NULL
        return node


cdef dict _path_cache = {}


cdef _Path _parse_path(object text):
    path = _path_cache.get(text) if isinstance(text, str) else None
    if path is None:
        path = _Path(text)
        if len(_path_cache) >= 4096:
            _path_cache.clear()
        _path_cache[text] = path
    return <_Path>path


cdef object _join_bar(object left, object right):
    cdef Py_ssize_t a, b
    cdef char* out
    if PyUnicode_IS_ASCII(left) and PyUnicode_IS_ASCII(right):
        a = PyUnicode_GET_LENGTH(left)
        b = PyUnicode_GET_LENGTH(right)
        joined = PyUnicode_New(a + 1 + b, 127)
        out = <char*>PyUnicode_DATA(joined)
        memcpy(out, PyUnicode_DATA(left), a)
        out[a] = b'|'
        memcpy(out + a + 1, PyUnicode_DATA(right), b)
        return joined
    return "|".join((left, right))


@cython.final
cdef class _Field:
    """A field: the paths whose canonical texts are joined with "|".

    ``optional``: two or more paths, at least one optional; such a field is read by
    ``_extract_optional`` so the loop of the all-required field stays as it was.
    """

    cdef readonly tuple texts
    cdef tuple paths
    cdef Py_ssize_t n
    cdef bint optional
    cdef _Path first
    cdef _Path second

    def __cinit__(self, paths):
        if isinstance(paths, str):
            raise TypeError(f"a field is a sequence of paths, not the str {paths!r}")
        self.paths = tuple([_parse_path(path) for path in paths])
        self.texts = tuple([(<_Path>path).text for path in self.paths])
        self.n = len(self.paths)
        self.first = self.paths[0] if self.n > 0 else None
        self.second = self.paths[1] if self.n > 1 else None
        self.optional = self.n > 1 and any([(<_Path>path).optional for path in self.paths])

    cdef object _extract_optional(self, PyObject* event):
        """A field with optional parts: a missing optional part is "", all missing is None."""
        cdef Py_ssize_t i, missing = 0
        cdef _Path path
        parts = []
        for i in range(self.n):
            path = <_Path>self.paths[i]
            text = _canonical(path.read(event))
            if text is None:
                if not path.optional:
                    return None
                text = ""
                missing += 1
            parts.append(text)
        if missing == self.n:
            return None
        if self.n == 2:
            return _join_bar(parts[0], parts[1])
        return "|".join(parts)

    cdef inline object extract(self, PyObject* event):
        cdef Py_ssize_t i
        if self.n == 1:
            return _canonical(self.first.read(event))
        if self.n == 0:
            return None
        if self.optional:
            return self._extract_optional(event)
        first = _canonical(self.first.read(event))
        if first is None:
            return None
        second = _canonical(self.second.read(event))
        if second is None:
            return None
        if self.n == 2:
            return _join_bar(first, second)
        parts = [first, second]
        for i in range(2, self.n):
            text = _canonical((<_Path>self.paths[i]).read(event))
            if text is None:
                return None
            parts.append(text)
        return "|".join(parts)


cdef dict _field_cache = {}


def extract(event, paths):
    """The canonical text of a field: its paths' texts joined with ``"|"``, or ``None``.

    A path ending in ``?`` is an optional part (see ``core_ext._core_py``).

    Raises:
        TypeError: ``paths`` is a bare str, or holds something that is not a str.
        ValueError: a literal path ends in ``?`` (a literal cannot be optional).
    """
    if isinstance(paths, str):
        raise TypeError(f"a field is a sequence of paths, not the str {paths!r}")
    key = paths if type(paths) is tuple else tuple(paths)
    field = _field_cache.get(key)
    if field is None:
        field = _Field(key)
        if len(_field_cache) >= 4096:
            _field_cache.clear()
        _field_cache[key] = field
    return (<_Field>field).extract(<PyObject*>event)


def _lookup_keys(SourceSpec spec not None):
    """The key objects the event id's first path looks up with now (for the tests)."""
    return tuple(spec._event_id_field.first.seen) if spec._event_id_field.n else ()


# --- status map -----------------------------------------------------------------------


cdef struct _Slot:
    char* text          # UTF-8 of the canonical key; NULL marks an empty slot
    Py_ssize_t length
    uint64_t hash
    PyObject* code      # owned reference to the int code


@cython.final
cdef class StatusMap:
    """Raw status text -> integer status code, with ``"<first part>|*"`` wildcards.

    The statuses live in a small open-addressing C table keyed by UTF-8 bytes and XXH3,
    so a lookup neither hashes the fresh status string with SipHash nor compares
    str objects.

    Raises:
        TypeError: a key is not a str or a code not an int.
        ValueError: a key is empty, or two keys canonicalise alike with different codes.
    """

    cdef dict _table
    cdef _Slot* _slots
    cdef size_t _mask

    def __init__(self, table):
        canonical = _canonical_table(table)
        cdef size_t capacity = 8
        while capacity < 2 * len(canonical):
            capacity *= 2
        cdef _Slot* slots = <_Slot*>calloc(capacity, sizeof(_Slot))
        if slots == NULL:
            raise MemoryError()
        cdef size_t index
        cdef bytes encoded
        cdef Py_ssize_t length
        try:
            for key, code in canonical.items():
                encoded = key.encode("utf-8", "surrogatepass")
                length = len(encoded)
                index = XXH3_64bits(<const char*>encoded, length) & (capacity - 1)
                while slots[index].text != NULL:
                    index = (index + 1) & (capacity - 1)
                slots[index].text = <char*>malloc(max(length, 1))
                if slots[index].text == NULL:
                    raise MemoryError()
                memcpy(slots[index].text, <const char*>encoded, length)
                slots[index].length = length
                slots[index].hash = XXH3_64bits(<const char*>encoded, length)
                slots[index].code = <PyObject*>code
                Py_INCREF(code)
        except BaseException:
            _free_slots(slots, capacity)
            raise
        _free_slots(self._slots, self._mask + 1 if self._slots != NULL else 0)
        self._slots = slots
        self._mask = capacity - 1
        self._table = canonical

    def __dealloc__(self):
        if self._slots != NULL:
            _free_slots(self._slots, self._mask + 1)
            self._slots = NULL

    cdef inline PyObject* _find(self, const char* data, Py_ssize_t length) noexcept:
        cdef uint64_t hash = XXH3_64bits(data, length)
        cdef size_t index = hash & self._mask
        cdef _Slot* slot
        while True:
            slot = &self._slots[index]
            if slot.text == NULL:
                return NULL
            if slot.hash == hash and slot.length == length and memcmp(slot.text, data, length) == 0:
                return slot.code
            index = (index + 1) & self._mask

    cdef inline object _lookup(self, object raw):
        if raw is None:
            return _CODE_MISSING
        cdef Py_ssize_t length
        cdef const char* data
        cdef PyObject* code
        cdef const char* bar
        cdef char* wildcard
        cdef char stack[_STACK_BYTES]
        if PyUnicode_IS_ASCII(raw):
            data = <const char*>PyUnicode_DATA(raw)
            length = PyUnicode_GET_LENGTH(raw)
        else:
            data = PyUnicode_AsUTF8AndSize(raw, &length)
            if data == NULL:
                PyErr_Clear()
                encoded = PyUnicode_AsEncodedString(raw, "utf-8", "surrogatepass")
                data = PyBytes_AS_STRING(encoded)
                length = PyBytes_GET_SIZE(encoded)
        if self._slots == NULL:
            return _CODE_UNKNOWN
        code = self._find(data, length)
        if code != NULL:
            return <object>code
        # "|" is ASCII, so its first byte in the UTF-8 is its first character.
        bar = <const char*>memchr(data, 124, length)
        if bar == NULL:
            return _CODE_UNKNOWN
        length = bar - data + 1
        wildcard = &stack[0] if length + 1 <= _STACK_BYTES else <char*>malloc(length + 1)
        if wildcard == NULL:
            raise MemoryError()
        memcpy(wildcard, data, length)
        wildcard[length] = b"*"
        code = self._find(wildcard, length + 1)
        if wildcard != &stack[0]:
            free(wildcard)
        return <object>code if code != NULL else _CODE_UNKNOWN

    def lookup(self, raw_status):
        """The code of ``raw_status`` (canonical text), ``CODE_MISSING`` or ``CODE_UNKNOWN``."""
        if raw_status is not None and not isinstance(raw_status, str):
            raise TypeError(f"raw_status must be a str or None, not {type(raw_status).__name__}")
        return self._lookup(raw_status)

    def __len__(self):
        return len(self._table)

    def __repr__(self):
        return f"StatusMap({len(self._table)} statuses)"


cdef void _free_slots(_Slot* slots, size_t capacity) noexcept:
    cdef size_t i
    if slots == NULL:
        return
    for i in range(capacity):
        if slots[i].text != NULL:
            free(slots[i].text)
            Py_XDECREF(slots[i].code)
    free(slots)


# --- source spec and batches ----------------------------------------------------------


@cython.final
cdef class SourceSpec:
    """Where one source's events keep the fields the core reads, plus its status map.

    See ``core_ext._core_py.SourceSpec``.
    """

    cdef readonly str source
    cdef readonly tuple event_id
    cdef readonly tuple order_id
    cdef readonly tuple status
    cdef readonly tuple buyer
    cdef readonly StatusMap status_map
    cdef _Field _event_id_field
    cdef _Field _order_id_field
    cdef _Field _status_field
    cdef tuple _buyer_paths
    cdef tuple _buyer_kinds
    cdef int* _buyer_codes
    cdef Py_ssize_t _buyer_count

    def __init__(self, source, event_id, order_id, status, buyer, status_map):
        if not isinstance(source, str):
            raise TypeError(f"source must be a str, not {type(source).__name__}")
        if not isinstance(status_map, StatusMap):
            raise TypeError(f"status_map must be a StatusMap, not {type(status_map).__name__}")
        self.source = source
        self._event_id_field = _Field(event_id)
        self._order_id_field = _Field(order_id)
        self._status_field = _Field(status)
        self.event_id = self._event_id_field.texts
        self.order_id = self._order_id_field.texts
        self.status = self._status_field.texts
        self.buyer = _buyer_pairs(buyer)
        self._buyer_kinds = tuple([kind for kind, _ in self.buyer])
        self._buyer_paths = tuple([_parse_path(path) for _, path in self.buyer])
        self._buyer_count = len(self.buyer)
        free(self._buyer_codes)
        self._buyer_codes = <int*>malloc(max(self._buyer_count, 1) * sizeof(int))
        if self._buyer_codes == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(self._buyer_count):
            self._buyer_codes[i] = _kind_code(self._buyer_kinds[i])
        self.status_map = status_map

    def __dealloc__(self):
        free(self._buyer_codes)

    def __repr__(self):
        return (
            f"SourceSpec(source={self.source!r}, event_id={self.event_id!r}, order_id={self.order_id!r}, "
            f"status={self.status!r}, buyer={self.buyer!r}, status_map={self.status_map!r})"
        )


def process_batch(SourceSpec spec not None, str tenant not None, events):
    """Fingerprint, buyer key, status code and the three texts of each event, in order.

    Returns:
        One ``(fingerprint, buyer_key, status_code, event_id, order_id, raw_status)`` per event.
    """
    if not isinstance(events, list):
        events = list(events)
    cdef PyObject* items = <PyObject*>events
    cdef Py_ssize_t n = PyList_GET_SIZE(items)
    cdef list rows = PyList_New(n)
    cdef char fingerprint_stack[_STACK_BYTES]
    cdef char buyer_stack[_STACK_BYTES]
    cdef _Buffer fingerprint_buf, buyer_buf
    cdef Py_ssize_t i, j, fingerprint_prefix, buyer_prefix
    cdef PyObject* event
    cdef PyObject* value
    cdef _Field event_id_field = spec._event_id_field
    cdef _Field order_id_field = spec._order_id_field
    cdef _Field status_field = spec._status_field
    cdef StatusMap status_map = spec.status_map
    cdef tuple buyer_paths = spec._buyer_paths
    cdef tuple buyer_kinds = spec._buyer_kinds
    cdef Py_ssize_t buyer_count = spec._buyer_count
    cdef int* buyer_codes = spec._buyer_codes
    not_an_object = None
    _buffer_init(&fingerprint_buf, fingerprint_stack)
    _buffer_init(&buyer_buf, buyer_stack)
    try:
        _put_text(&fingerprint_buf, tenant)
        _put_text(&fingerprint_buf, spec.source)
        fingerprint_prefix = fingerprint_buf.length
        if _salt is not None:
            _put_text(&buyer_buf, _salt)
        _put_text(&buyer_buf, tenant)
        buyer_prefix = buyer_buf.length
        for i in range(n):
            event = PyList_GET_ITEM(items, i)
            if not PyDict_Check(event):
                if not_an_object is None:
                    fingerprint_buf.length = fingerprint_prefix
                    _put_text(&fingerprint_buf, None)
                    _put_text(&fingerprint_buf, None)
                    _put_text(&fingerprint_buf, None)
                    not_an_object = (_hash(&fingerprint_buf), _ZERO, _CODE_MISSING, None, None, None)
                Py_INCREF(not_an_object)
                PyList_SET_ITEM(rows, i, not_an_object)
                continue
            event_id = event_id_field.extract(event)
            order_id = order_id_field.extract(event)
            raw_status = status_field.extract(event)
            code = status_map._lookup(raw_status)
            buyer = _ZERO
            for j in range(buyer_count):
                value = (<_Path><object>PyTuple_GET_ITEM(buyer_paths, j)).read(event)
                text = _canonical(value)
                if text is None:
                    continue
                if (<str>text).startswith("#"):
                    buyer = _token_key(text)
                    if buyer:
                        break
                buyer_buf.length = buyer_prefix
                kind = <object>PyTuple_GET_ITEM(buyer_kinds, j)
                _put_text(&buyer_buf, kind)
                if _put_identity(&buyer_buf, buyer_codes[j], kind, text):
                    buyer = _hash(&buyer_buf)
                    if buyer == 0:
                        buyer = _ONE
                    break
            fingerprint_buf.length = fingerprint_prefix
            _put_text(&fingerprint_buf, event_id)
            _put_text(&fingerprint_buf, order_id)
            _put_text(&fingerprint_buf, raw_status)
            row = (_hash(&fingerprint_buf), buyer, code, event_id, order_id, raw_status)
            # Only ints, strs and None inside: the row can never be part of a cycle.
            PyObject_GC_UnTrack(<void*>row)
            Py_INCREF(row)
            PyList_SET_ITEM(rows, i, row)
    finally:
        _buffer_free(&fingerprint_buf)
        _buffer_free(&buyer_buf)
    return rows


def _floor_batch(list events not None, tuple keys not None):
    """Benchmark floor: read ``keys`` of each dict, hash the first key's value once.

    Lookups use the events' own key objects (learned from the first dict), as the core does.
    Returns a checksum so the work cannot be skipped.
    """
    cdef Py_ssize_t i, k, n = len(events), nkeys = len(keys)
    cdef PyObject* event
    cdef PyObject* value
    cdef PyObject* key
    cdef Py_ssize_t pos, size
    cdef const char* data
    cdef uint64_t checksum = 0
    cdef uint64_t present
    seen = list(keys)
    for i in range(n):
        event = PyList_GET_ITEM(<PyObject*>events, i)
        if PyDict_Check(event):
            for k in range(nkeys):
                pos = 0
                while PyDict_Next(event, &pos, &key, &value):
                    if PyUnicode_CheckExact(<object>key) and <object>key == keys[k]:
                        seen[k] = <object>key
                        break
            break
    for i in range(n):
        event = PyList_GET_ITEM(<PyObject*>events, i)
        if not PyDict_Check(event):
            continue
        present = 0
        for k in range(1, nkeys):
            value = PyDict_GetItemWithError(event, PyList_GET_ITEM(<PyObject*>seen, k))
            if value != NULL and <object>value is not None:
                present += 1
        value = PyDict_GetItemWithError(event, PyList_GET_ITEM(<PyObject*>seen, 0))
        if value != NULL and PyUnicode_Check(<object>value):
            data = PyUnicode_AsUTF8AndSize(<object>value, &size)
            if data == NULL:
                PyErr_Clear()
            else:
                checksum ^= XXH3_64bits(data, size)
        checksum += present
    return checksum
