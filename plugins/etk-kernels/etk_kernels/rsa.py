"""Random Sparse Attention (RSA): block-sparse attention over a random layout.

Each (head, query block) attends to the key blocks its layout row lists (see `etk_kernels.layout`). Two
implementations with the same semantics:

- the compiled kernel: CPU (`csrc/rsa.cpp`), O(block_size x row width) memory per task, never the dense n x n
  scores; and, where torch has CUDA and a CUDA toolkit is found at build time, CUDA (`csrc/rsa_cuda.cu`,
  streaming softmax, float32 / float16 / bfloat16); prebuilt at install time as `etk_kernels._rsa_ext`, else
  JIT-compiled on first use;
- `rsa_reference`: standard PyTorch ops (index_select, matmul, masked softmax), exportable to ONNX.

`rsa_attention` is the public entry: any sequence length (padded internally to a multiple of the block size
with masked keys), the compiled kernel where it applies, the reference everywhere else.

Semantics shared by both: keys with ``key_keep`` False and the -1 padding of the layout get probability 0; a
query row whose every key is masked outputs 0 (and gets zero gradients).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from etk_kernels.build_status import JIT_NAME

log = logging.getLogger(__name__)

_UNSET = object()
_EXT: Any = _UNSET
_LOCK = threading.Lock()
_SOURCE = Path(__file__).parent / "csrc" / "rsa.cpp"
_CUDA_SOURCE = Path(__file__).parent / "csrc" / "rsa_cuda.cu"
#: Head dims the CUDA kernel is compiled for (others run the reference on CUDA).
CUDA_HEAD_DIMS = (16, 32, 64, 128)


def cuda_build_wanted() -> bool:
    """Whether a build should compile the CUDA kernels: torch built with CUDA, a CUDA toolkit found, and not
    switched off with ``ETK_RSA_CUDA=0``."""
    if os.environ.get("ETK_RSA_CUDA", "").strip() == "0" or torch.version.cuda is None:
        return False
    from torch.utils.cpp_extension import CUDA_HOME

    return CUDA_HOME is not None


def load_extension() -> Any | None:
    """The compiled RSA module (prebuilt, else JIT-compiled and cached by torch), or None.

    ``ETK_RSA_BACKEND=reference`` forces None (the pure-PyTorch reference everywhere).
    """
    global _EXT
    if os.environ.get("ETK_RSA_BACKEND", "").strip().lower() == "reference":
        return None
    if _EXT is not _UNSET:
        return _EXT
    with _LOCK:
        if _EXT is _UNSET:
            _EXT = _build()
    return _EXT


def _build() -> Any | None:
    """The prebuilt extension, else a JIT build of csrc/rsa.cpp, else None."""
    ext = None
    try:
        from etk_kernels import _rsa_ext as ext  # built by setup.py at install time
    except ImportError:
        ext = None
    if ext is None:
        for cuda in ([True, False] if cuda_build_wanted() else [False]):
            ext = _jit_build(cuda)
            if ext is not None:
                break
    return ext


def _digest(path: Path) -> str:
    """A short hash of a header, passed as a define so that torch re-builds when the header changes."""
    import hashlib

    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


def _jit_build(cuda: bool) -> Any | None:
    """Compile the kernel just in time (with its CUDA part or not); None when the build fails."""
    try:
        from torch.utils.cpp_extension import load

        sources = [str(_SOURCE)] + ([str(_CUDA_SOURCE)] if cuda else [])
        kernels = _CUDA_SOURCE.with_name("rsa_cuda_kernels.cuh")
        defines = ["-DRSA_WITH_CUDA", f"-DRSA_KERNELS_DIGEST={_digest(kernels)}"] if cuda else []
        return load(name=JIT_NAME + ("_cuda" if cuda else ""), sources=sources,
                    extra_cflags=["-O3", "-fopenmp", *defines], extra_cuda_cflags=["-O3", *defines],
                    extra_ldflags=["-fopenmp"], verbose=False)
    except Exception as exc:  # no compiler, no headers, a failed build: fall back to the reference
        log.debug("RSA extension (cuda=%s) unavailable: %s", cuda, exc)
        return None


def kernel_status() -> str:
    """``"compiled"`` when the RSA extension loads, else ``"reference"``."""
    return "compiled" if load_extension() is not None else "reference"


def cuda_kernel_available() -> bool:
    """Whether the loaded extension has its CUDA kernels compiled in."""
    ext = load_extension()
    return ext is not None and bool(getattr(ext, "has_cuda", lambda: False)())


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int) -> None:
    if q.dim() != 4:
        raise ValueError(f"q, k, v must be [B, H, n, d] (got q of shape {tuple(q.shape)})")
    if k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"q, k, v must have one shape (got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)})")
    if block_size < 1:
        raise ValueError(f"block_size must be positive (got {block_size})")


def _pad(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_keep: torch.Tensor | None, block_size: int):
    """Pads n up to a multiple of block_size; the padded keys are masked (key_keep False)."""
    n = q.shape[-2]
    pad = (-n) % block_size
    if key_keep is not None:
        key_keep = key_keep.to(device=q.device, dtype=torch.bool)
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        if key_keep is None:
            key_keep = torch.ones(q.shape[0], n, dtype=torch.bool, device=q.device)
        key_keep = F.pad(key_keep, (0, pad), value=False)
    return q, k, v, key_keep


def _check_layout(layout: torch.Tensor, heads: int, num_blocks: int) -> None:
    if layout.dim() != 3 or layout.shape[0] != heads or layout.shape[1] != num_blocks:
        raise ValueError(f"layout must be [heads={heads}, num_blocks={num_blocks}, width] "
                         f"(got {tuple(layout.shape)})")


def rsa_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: torch.Tensor, block_size: int,
                  key_keep: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """RSA in standard PyTorch ops (ONNX-exportable, opset 17): q, k, v [B, H, n, d] -> [B, H, n, d].

    The key blocks of every (head, query block) are gathered ([B, H, n_b, width * bs, d]), so memory is
    O(n x width x bs x d / bs) per head, not O(n^2). The layout's -1 entries point at block 0 and are masked.
    """
    _check(q, k, v, block_size)
    n = q.shape[-2]
    q, k, v, key_keep = _pad(q, k, v, key_keep, block_size)
    batch, heads, n_pad, d = q.shape
    bs = block_size
    nb = n_pad // bs
    _check_layout(layout, heads, nb)
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    layout = layout.to(q.device)
    width = layout.shape[-1]
    valid = layout >= 0                                                   # [H, nb, W]
    idx = layout.clamp(min=0).long()                                      # -1 -> block 0 (masked below)
    head_offset = torch.arange(heads, device=q.device).view(heads, 1, 1) * nb
    flat = (idx + head_offset).reshape(-1)                                # [H * nb * W] into [H * nb] blocks
    kg = k.reshape(batch, heads * nb, bs, d).index_select(1, flat).reshape(batch, heads, nb, width * bs, d)
    vg = v.reshape(batch, heads * nb, bs, d).index_select(1, flat).reshape(batch, heads, nb, width * bs, d)
    qb = q.reshape(batch, heads, nb, bs, d)
    scores = torch.matmul(qb, kg.transpose(-1, -2)) * scale              # [B, H, nb, bs, W * bs]
    keep = valid.unsqueeze(-1).expand(heads, nb, width, bs).reshape(1, heads, nb, 1, width * bs)
    if key_keep is not None:
        kk = key_keep.reshape(batch, nb, bs).index_select(1, idx.reshape(-1))
        keep = keep & kk.reshape(batch, heads, nb, 1, width * bs)
    scores = scores.masked_fill(~keep, float("-inf"))
    # The row max is only a shift (softmax does not depend on it): detached; -inf (every key masked) -> finite.
    row_max = scores.detach().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).min)
    e = torch.exp(scores - row_max)
    denom = e.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
    out = torch.matmul(e / denom, vg).reshape(batch, heads, n_pad, d)
    return out[:, :, :n]


class RSAFunction(torch.autograd.Function):
    """Autograd wrapper of the compiled kernel; n must be a multiple of block_size (see `rsa_attention`)."""

    @staticmethod
    def forward(ctx, q, k, v, layout, key_keep, block_size, scale):  # noqa: D102
        ext = load_extension()
        if ext is None:
            raise RuntimeError("the compiled RSA kernel is not available (kernel_status() == 'reference')")
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        layout = layout.to(device=q.device, dtype=torch.int32).contiguous()
        if key_keep is None:
            key_keep = torch.empty(0, dtype=torch.bool)
        out, lse = ext.rsa_forward(q, k, v, layout, key_keep, int(block_size), float(scale))
        ctx.save_for_backward(q, k, v, out, lse, layout, key_keep)
        ctx.block_size = int(block_size)
        ctx.scale = float(scale)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        q, k, v, out, lse, layout, key_keep = ctx.saved_tensors
        dq, dk, dv = load_extension().rsa_backward(grad_out.contiguous(), q, k, v, out, lse, layout, key_keep,
                                                   ctx.block_size, ctx.scale)
        return dq, dk, dv, None, None, None, None


def _use_kernel(q: torch.Tensor, block_size: int) -> bool:
    if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    if q.device.type == "cpu":
        return q.dtype in (torch.float32, torch.float64) and load_extension() is not None
    if q.device.type == "cuda":
        return (q.dtype in (torch.float32, torch.float16, torch.bfloat16) and q.shape[-1] in CUDA_HEAD_DIMS
                and block_size <= 1024 and _fits_shared_memory(q, block_size) and cuda_kernel_available())
    return False


def _fits_shared_memory(q: torch.Tensor, block_size: int) -> bool:
    """Whether the CUDA kernels' tiles (two [block, head dim] float tiles and two per-row vectors) fit the
    shared memory one thread block may have on q's device."""
    properties = torch.cuda.get_device_properties(q.device)
    limit = getattr(properties, "shared_memory_per_block_optin", 48 * 1024)
    return (2 * block_size * q.shape[-1] + 2 * block_size) * 4 <= limit


def rsa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: torch.Tensor, block_size: int,
                  key_keep: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """Random sparse attention: q, k, v [B, H, n, d] (any n) -> [B, H, n, d].

    ``layout``: [H, ceil(n / block_size), width] key-block indices (-1 = none), e.g. from `random_layout`.
    ``key_keep``: [B, n] bool (True = a real token a query may attend to), None = all kept.
    ``scale``: default 1 / sqrt(d). The compiled kernel runs on CPU float32 / float64 and, where built, on CUDA
    float32 / float16 / bfloat16 with head dim 16, 32, 64 or 128, outside ONNX export (see `kernel_status`,
    `cuda_kernel_available`); everything else runs `rsa_reference`.
    """
    _check(q, k, v, block_size)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if not _use_kernel(q, block_size):
        return rsa_reference(q, k, v, layout, block_size, key_keep=key_keep, scale=scale)
    n = q.shape[-2]
    qp, kp, vp, keep = _pad(q, k, v, key_keep, block_size)
    _check_layout(layout, q.shape[1], qp.shape[-2] // block_size)
    keep = keep.contiguous() if keep is not None else None
    out = RSAFunction.apply(qp, kp, vp, layout, keep, block_size, scale)
    return out[:, :, :n] if out.shape[-2] != n else out
