"""etk-kernels build: the RSA CPU kernel becomes `etk_kernels._rsa_ext` when torch is importable at build
time (pip install --no-build-isolation); an isolated build (no torch) installs without it, and
`etk_kernels.rsa` then compiles the kernel just in time on first use, else uses the PyTorch reference.
Where torch has CUDA and a CUDA toolkit is found (CUDA_HOME), the CUDA kernels (csrc/rsa_cuda.cu) are compiled
into the same module; ETK_RSA_CUDA=0 builds the CPU kernel alone."""

import os

from setuptools import setup

ext_modules: list = []
cmdclass: dict = {}
try:
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
except ImportError:
    pass
else:
    class OptionalBuildExtension(BuildExtension):
        """A failed kernel build is a warning, not a failed install (the JIT build / reference remain)."""

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
                return
            except Exception as exc:  # noqa: BLE001
                failure = exc
            if any(source.endswith(".cu") for source in ext.sources):  # keep the CPU kernel at least
                print(f"warning: the CUDA part of etk_kernels._rsa_ext failed to build ({failure}); building the "
                      "CPU kernel alone")
                ext.sources = [source for source in ext.sources if not source.endswith(".cu")]
                ext.define_macros = [m for m in ext.define_macros if m[0] != "RSA_WITH_CUDA"]
                ext.extra_compile_args = {"cxx": ext.extra_compile_args["cxx"]}
                try:
                    super().build_extension(ext)
                    return
                except Exception as exc:  # noqa: BLE001
                    failure = exc
            print(f"warning: etk_kernels._rsa_ext not built ({failure}); RSA will JIT-compile or use the reference")

    with_cuda = torch.version.cuda is not None and CUDA_HOME is not None and os.environ.get("ETK_RSA_CUDA") != "0"
    if with_cuda:
        sources = ["etk_kernels/csrc/rsa.cpp", "etk_kernels/csrc/rsa_cuda.cu"]
        ext_modules = [CUDAExtension("etk_kernels._rsa_ext", sources,
                                     define_macros=[("RSA_WITH_CUDA", None)],
                                     extra_compile_args={"cxx": ["-O3", "-fopenmp"], "nvcc": ["-O3"]},
                                     extra_link_args=["-fopenmp"])]
    else:
        ext_modules = [CppExtension("etk_kernels._rsa_ext", ["etk_kernels/csrc/rsa.cpp"],
                                    extra_compile_args=["-O3", "-fopenmp"], extra_link_args=["-fopenmp"])]
    cmdclass = {"build_ext": OptionalBuildExtension}

setup(ext_modules=ext_modules, cmdclass=cmdclass)
