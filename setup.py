"""Build the optional C extension ``core_ext._core``; all metadata lives in pyproject.toml.

``GATEWAY_NO_EXTENSIONS`` (any non-empty value but "0") skips the extension; the same
variable forces the pure-Python core at run time (``core_ext/__init__.py``). A missing
compiler, missing Cython or a failed compile prints a loud banner and installs the
pure-Python fallback instead of failing the install.
"""

from __future__ import annotations

import os
import sys
import traceback

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

NO_EXTENSIONS = os.environ.get("GATEWAY_NO_EXTENSIONS", "") not in ("", "0")

BUILD_ERRORS = (CCompilerError, CompileError, ExecError, LinkError, PlatformError, OSError, ValueError)


def banner(reason: str) -> None:
    line = "*" * 78
    print(
        f"\n{line}\n"
        "core_ext: C extension NOT built, installing the pure-Python fallback,\n"
        "          expect a ~10-15x slower core (measured: python -m benchmarks core).\n"
        f"  reason: {reason}\n"
        "  To build it: install a C compiler (e.g. `apt-get install gcc`) and Cython >= 3.0,\n"
        "  then reinstall. To skip it on purpose: set GATEWAY_NO_EXTENSIONS=1.\n"
        f"{line}\n",
        file=sys.stderr,
        flush=True,
    )


class OptionalBuildExt(build_ext):
    """``build_ext`` that degrades to the pure-Python core instead of failing.

    An extension that fails to build is dropped from ``self.extensions``, so the
    in-place copy and the (editable) wheel's file list do not look for it.
    """

    def build_extensions(self) -> None:
        self.check_extensions_list(self.extensions)
        for ext in list(self.extensions):
            if self.compiler.compiler_type == "unix":
                ext.extra_compile_args = [*ext.extra_compile_args, "-O3"]
            try:
                self.build_extension(ext)
            except BUILD_ERRORS as exc:
                traceback.print_exc()
                banner(f"compiling {ext.name} failed: {type(exc).__name__}: {exc}")
                self.extensions.remove(ext)

    def run(self) -> None:
        try:
            super().run()
        except BUILD_ERRORS as exc:  # e.g. no compiler at all
            traceback.print_exc()
            banner(f"{type(exc).__name__}: {exc}")
            self.extensions = []


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        print("core_ext: GATEWAY_NO_EXTENSIONS is set, installing the pure-Python core only",
              file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        banner("Cython is not installed (pip install 'cython>=3.0')")
        return []
    try:
        return cythonize(
            [Extension("core_ext._core", ["core_ext/_core.pyx"])],
            compiler_directives={"language_level": "3"},
        )
    except Exception as exc:  # Cython reports syntax errors with its own exception types
        banner(f"cythonize failed: {type(exc).__name__}: {exc}")
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
