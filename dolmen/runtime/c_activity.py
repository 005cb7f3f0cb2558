"""A function of your own C shared library as an activity, called through cffi.

``dolmen.c_activity("build/libmine.so", "long add(long a, long b);")`` declares the
function with ``ffi.cdef``; the library is opened the first time an attempt runs, in the
process that runs it, and kept open there. cffi releases the GIL for the call, so these
activities run on the ``"native"`` executor, one thread per CPU.

Arguments: numbers for integer, floating and ``_Bool`` parameters; for ``const T *``
parameters a list of numbers, or bytes when ``T`` is a byte type (``const char *`` also
takes a str, passed NUL-terminated). Lengths are passed explicitly, as C expects. The
result is a number or None (``void``). Wrong arguments raise ``TypeError`` (or
``OverflowError``) naming the parameter when the workflow calls the activity, before
anything is scheduled.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import re
import threading
from typing import Any

from dolmen.runtime.definitions import Activity

_DECLARATION = re.compile(
    r"^\s*(?P<result>[\w\s*]*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*\((?P<params>[^()]*)\)\s*;?\s*$"
)
_PARAM = re.compile(r"^(?P<type>.*?[\s*])(?P<name>[A-Za-z_]\w*)$", re.S)
# Words that end a parameter's type, so "unsigned long" is a type without a name.
_TYPE_WORDS = frozenset(
    "void char short int long float double signed unsigned _Bool bool const volatile".split()
)
_BYTE_TYPES = frozenset({"char", "signed char", "unsigned char", "int8_t", "uint8_t"})
_FLOAT_TYPES = frozenset({"float", "double", "long double"})


class CLibraryError(Exception):
    """The library cannot be loaded, or lacks the declared function (retries apply)."""


class CSignatureError(ValueError):
    """The declaration is not one C function that dolmen can call."""


@dataclasses.dataclass(frozen=True)
class _Param:
    name: str
    ctype: str  # cffi's name of the type, e.g. "long" or "uint8_t *"
    kind: str  # "int", "float", "bool", "bytes" (pointer to bytes) or "array"
    item: str = ""  # for pointers: the type pointed to


@functools.cache
def _ffi(declaration: str) -> Any:
    """One FFI per declaration and process: cdef'd once, shared by all threads."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(declaration)
    return ffi


# (library, declaration) -> (ffi, the loaded function); failures are not cached, so a
# library installed between two attempts is found by the retry.
_FUNCTIONS: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def _load(library: str, declaration: str, function: str) -> tuple[Any, Any]:
    found = _FUNCTIONS.get((library, declaration))
    if found is not None:
        return found
    with _LOAD_LOCK:
        found = _FUNCTIONS.get((library, declaration))
        if found is None:
            ffi = _ffi(declaration)
            try:
                lib = ffi.dlopen(library)
            except OSError as exc:
                reason = str(exc).split(".  Additionally", 1)[0]
                reason = reason.removeprefix(f"cannot load library {library!r}: ")
                raise CLibraryError(f"cannot load C library {library!r}: {reason}") from None
            try:
                found = ffi, getattr(lib, function)
            except AttributeError:
                raise CLibraryError(
                    f"symbol {function!r} not found in C library {library!r}"
                ) from None
            _FUNCTIONS[(library, declaration)] = found
    return found


def _parse(signature: str) -> tuple[str, str, list[_Param], str]:
    """(function name, result kind, parameters, the declaration to cdef)."""
    match = _DECLARATION.match(signature)
    if match is None or not match["result"].strip():
        raise CSignatureError(
            f"expected one C function declaration like 'long add(long a, long b);', "
            f"got {signature!r}"
        )
    name, result = match["name"], match["result"].strip()
    declaration = f"{result} {name}({match['params']});"
    try:
        ffi = _ffi(declaration)
    except Exception as exc:  # noqa: BLE001 - cffi raises several parser error types
        reason = " ".join(str(exc).split())
        raise CSignatureError(f"cannot parse C declaration {signature!r}: {reason}") from None
    texts = [p.strip() for p in match["params"].split(",")] if match["params"].strip() else []
    if texts == ["void"]:
        texts = []
    params = [_param(ffi, text, i, signature) for i, text in enumerate(texts)]
    result_kind = _primitive_kind(ffi.typeof(result)) if result != "void" else "void"
    if result_kind not in ("int", "float", "bool", "void"):
        raise CSignatureError(f"{signature!r}: the result must be a number, _Bool or void")
    return name, result_kind, params, declaration


def _param(ffi: Any, text: str, index: int, signature: str) -> _Param:
    if text == "...":
        raise CSignatureError(f"{signature!r}: variadic functions are not supported")
    match = _PARAM.match(text)
    named = match is not None and match["name"] not in _TYPE_WORDS
    type_text = match["type"].strip() if named else text
    name = match["name"] if named else f"arg{index}"
    ctype = ffi.typeof(type_text)
    if ctype.kind == "pointer":
        item = ctype.item.cname
        if ctype.item.kind != "primitive" or not re.match(r"^const\b", type_text):
            raise CSignatureError(
                f"{signature!r}: parameter {name!r} ({type_text}) must be a number or a "
                "'const T *' input of numbers; results come back only as the return value"
            )
        kind = "bytes" if item in _BYTE_TYPES else "array"
        return _Param(name, ctype.cname, kind, item)
    kind = _primitive_kind(ctype)
    if kind is None:
        raise CSignatureError(f"{signature!r}: parameter {name!r} has unsupported type {text!r}")
    return _Param(name, ctype.cname, kind)


def _primitive_kind(ctype: Any) -> str | None:
    if ctype.kind == "enum":
        return "int"
    if ctype.kind != "primitive" or ctype.cname in ("char", "wchar_t", "char16_t", "char32_t"):
        return None  # plain char is a one-byte string to cffi: use int8_t or uint8_t
    if ctype.cname in _FLOAT_TYPES:
        return "float"
    return "bool" if ctype.cname == "_Bool" else "int"


def _convert(ffi: Any, param: _Param, value: Any, activity: str) -> Any:
    """The C value for ``value``; raises TypeError/OverflowError naming the parameter."""
    try:
        if param.kind == "bytes" and isinstance(value, str) and param.item == "char":
            return ffi.new("char[]", value.encode())
        if param.kind == "bytes" and isinstance(value, bytes | bytearray):
            # Borrowed, not copied; "char *" strings get a copy that ends with NUL.
            if param.item == "char":
                return ffi.new("char[]", bytes(value))
            return ffi.from_buffer(f"{param.item}[]", value)
        if param.kind in ("bytes", "array"):
            if not isinstance(value, list | tuple):
                raise TypeError(f"expected a list of numbers, not {type(value).__name__}")
            return ffi.new(f"{param.item}[]", list(value))
        if param.kind == "int" and isinstance(value, bool):
            raise TypeError("expected an int, not bool")
        ffi.new(f"{param.ctype} *", value)  # checks type and range; cffi's call would too
        return value
    except (TypeError, OverflowError) as exc:
        raise type(exc)(
            f"C activity {activity!r}: argument {param.name!r} ({param.ctype}): {exc}"
        ) from None


_HINTS = {"int": int, "float": float, "bool": bool}


class CActivity(Activity):
    """An activity that calls one function of a C shared library. See ``c_activity``."""

    def __init__(
        self,
        library: str,
        signature: str,
        *,
        name: str | None,
        retries: int,
        timeout: float | None,
        backoff: float,
        max_backoff: float,
    ) -> None:
        self.function, result, self.params, self.declaration = _parse(signature)
        # A path is made absolute here, where it was written; a bare name ("libz.so.1")
        # is left to the dynamic loader's search on the node that runs the attempt.
        self.library = os.path.abspath(library) if os.sep in library else library
        activity_name = name or f"c:{os.path.basename(library)}:{self.function}"

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = call.__signature__.bind(*args, **kwargs)  # type: ignore[attr-defined]
            ffi, function = _load(self.library, self.declaration, self.function)
            values = zip(self.params, bound.args, strict=True)
            return function(*(_convert(ffi, p, v, activity_name) for p, v in values))

        call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                for p in self.params
            ]
        )
        call.__annotations__ = {p.name: _HINTS.get(p.kind, Any) for p in self.params}
        call.__annotations__["return"] = _HINTS.get(result, None)
        super().__init__(
            call, activity_name, retries, timeout, backoff, max_backoff, "native", None
        )

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        """Check every argument against its C type now, in the workflow, not after retries."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"C activity {self.name!r}: {exc}") from None
        ffi = _ffi(self.declaration)
        for param, value in zip(self.params, bound.args, strict=True):
            _convert(ffi, param, value, self.name)
        return super().encode_args(args, kwargs)

    def __repr__(self) -> str:
        return f"<dolmen C activity {self.name}: {self.declaration}>"


def c_activity(
    library: str | os.PathLike[str],
    signature: str,
    *,
    name: str | None = None,
    retries: int = 3,
    timeout: float | None = None,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
) -> CActivity:
    """An activity calling the function ``signature`` declares, in the shared ``library``.

    The default name is ``c:<library file name>:<function>``. ``timeout`` abandons a call
    that runs too long (C code cannot be interrupted; its thread finishes in the
    background). See the module documentation for argument types.
    """
    return CActivity(
        os.fspath(library),
        signature,
        name=name,
        retries=retries,
        timeout=timeout,
        backoff=backoff,
        max_backoff=max_backoff,
    )
