"""The one compiled part of photod: the folder walker used by the reconcile scan (photod/roots/_fastwalk.c).

It is optional. Where no C compiler or Python headers are present the build skips it with a warning and
photod walks folders in pure Python instead (slower on big libraries, same results); `photod doctor`
says which one is in use. Everything else is declared in pyproject.toml.
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform != "win32":
    ext_modules.append(
        Extension(
            "photod.roots._fastwalk",
            ["photod/roots/_fastwalk.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99", "-D_GNU_SOURCE"],
        )
    )

setup(ext_modules=ext_modules)
