"""Builds the RSA kernel (`etk_kernels._rsa_ext`) at install time when torch is importable in the build
environment, i.e. with `pip install --no-build-isolation ...`; otherwise (an isolated build, no compiler)
the package installs without it and compiles the same source on first use, or falls back to PyTorch."""

from setuptools import setup


def extension_build() -> dict:
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except ImportError:  # isolated build: no torch here, the kernel is compiled just in time instead
        return {}
    extension = CppExtension("etk_kernels._rsa_ext", ["etk_kernels/csrc/rsa.cpp"],
                             extra_compile_args=["-O3", "-fopenmp"], extra_link_args=["-fopenmp"],
                             optional=True)  # a failed build leaves the just-in-time path and the fallback
    return {"ext_modules": [extension], "cmdclass": {"build_ext": BuildExtension}}


setup(**extension_build())
