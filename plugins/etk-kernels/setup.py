"""etk-kernels build: the RSA CPU kernel becomes `etk_kernels._rsa_ext` when torch is importable at build
time (pip install --no-build-isolation); an isolated build (no torch) installs without it, and
`etk_kernels.rsa` then compiles the kernel just in time on first use, else uses the PyTorch reference."""

from setuptools import setup

ext_modules: list = []
cmdclass: dict = {}
try:
    from torch.utils.cpp_extension import BuildExtension, CppExtension
except ImportError:
    pass
else:
    class OptionalBuildExtension(BuildExtension):
        """A failed kernel build is a warning, not a failed install (the JIT build / reference remain)."""

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as exc:  # noqa: BLE001
                print(f"warning: etk_kernels._rsa_ext not built ({exc}); RSA will JIT-compile or use the reference")

    ext_modules = [CppExtension("etk_kernels._rsa_ext", ["etk_kernels/csrc/rsa.cpp"],
                                extra_compile_args=["-O3", "-fopenmp"], extra_link_args=["-fopenmp"])]
    cmdclass = {"build_ext": OptionalBuildExtension}

setup(ext_modules=ext_modules, cmdclass=cmdclass)
