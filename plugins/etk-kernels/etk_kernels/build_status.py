"""Which RSA implementation is active, told without compiling or importing torch (for `etk plugins`)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: Name of the extension module built at install time, and of the just-in-time build.
PREBUILT, JIT_NAME = "etk_kernels._rsa_ext", "etk_rsa_ext"


def jit_cache_dir() -> Path:
    """Where torch.utils.cpp_extension keeps just-in-time builds (its default, or TORCH_EXTENSIONS_DIR)."""
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch_extensions"


def kernel_note() -> str:
    """One line: compiled kernel (install-time or just-in-time build) or the PyTorch reference."""
    if os.environ.get("ETK_RSA_BACKEND") == "reference":
        return "RSA: PyTorch reference (ETK_RSA_BACKEND=reference)"
    if importlib.util.find_spec(PREBUILT) is not None:
        return "RSA: compiled kernel (built at install)"
    if any(jit_cache_dir().glob(f"*/{JIT_NAME}*/{JIT_NAME}*.so")):
        return "RSA: compiled kernel (just-in-time build, cached)"
    return "RSA: not built yet; compiled on first use (needs a C++ compiler), else the PyTorch reference"
