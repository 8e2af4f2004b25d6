"""The CUDA RSA kernel: its source compiles with nvcc where a toolkit exists; its kernels, run on the CPU
under an emulation of the CUDA execution model (tests/cuda_emulation.cpp), equal the PyTorch reference; on a
GPU the real thing equals the reference (forward and gradients, masks, fully masked rows) and dense SDPA at
k=1. The GPU tests skip without CUDA (most CI machines); the compile check skips without nvcc."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from etk_kernels import rsa
from etk_kernels.layout import dense_layout, random_layout
from etk_kernels.rsa import rsa_attention, rsa_reference

CUDA_SOURCE = Path(rsa.__file__).parent / "csrc" / "rsa_cuda.cu"
EMULATION = Path(__file__).parent / "cuda_emulation.cpp"


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    from torch.utils.cpp_extension import CUDA_HOME

    candidate = Path(CUDA_HOME or "/usr/local/cuda") / "bin" / "nvcc"
    return str(candidate) if candidate.is_file() else None


def test_cuda_source_compiles(tmp_path):
    """nvcc compiles every kernel instantiation (4 dtypes x 4 head dims) against torch's headers."""
    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("no CUDA toolkit (nvcc) here")
    from torch.utils.cpp_extension import include_paths

    includes = [f"-I{path}" for path in include_paths()]
    macros = Path(include_paths()[0]) / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    if not macros.is_file():  # a CPU build of torch lacks this generated header; what a CUDA build has in it
        shim = tmp_path / "shim" / "c10" / "cuda" / "impl"
        shim.mkdir(parents=True)
        (shim / "cuda_cmake_macros.h").write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
        includes.append(f"-I{tmp_path / 'shim'}")
    command = [nvcc, "-c", "-std=c++17", "-O1", *includes, "-D__CUDA_NO_HALF_OPERATORS__",
               "-D__CUDA_NO_HALF_CONVERSIONS__", "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
               "--expt-relaxed-constexpr", "-diag-suppress", "3306", "-gencode", "arch=compute_80,code=sm_80",
               str(CUDA_SOURCE), "-o", str(tmp_path / "rsa_cuda.o")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PATH": f"{Path(nvcc).parent}:{os.environ.get('PATH', '')}"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "rsa_cuda.o").stat().st_size > 0


def _forward_backward(fn, q, k, v, seed=1):
    out = fn(q, k, v)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.device, out.dtype)
    return (out, *torch.autograd.grad(out, (q, k, v), grad))


@pytest.fixture(scope="module")
def emulated():
    """The CUDA kernels built for the CPU emulation (a C++ toolchain is all it needs)."""
    from torch.utils.cpp_extension import load

    kernels = CUDA_SOURCE.parent / "rsa_cuda_kernels.cuh"
    digest = rsa._digest(kernels)  # torch re-builds when its arguments change
    try:
        return load(name="etk_rsa_cuda_emulation", sources=[str(EMULATION)],
                    extra_include_paths=[str(CUDA_SOURCE.parent)],
                    extra_cflags=["-O1", "-Wno-unknown-pragmas", f"-DRSA_KERNELS_DIGEST={digest}"])
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no C++ toolchain to build the emulation: {exc}")


def _emulated_attention(ext, q, k, v, layout, bs, keep, scale):
    """The emulated kernels behind autograd, like RSAFunction does with the real ones."""

    class Emulated(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):
            out, lse = ext.forward(q, k, v, layout, keep, bs, scale)
            ctx.save_for_backward(q, k, v, out, lse)
            return out

        @staticmethod
        def backward(ctx, grad_out):
            q, k, v, out, lse = ctx.saved_tensors
            dq, dk, dv, _ = ext.backward(grad_out, q, k, v, out, lse, layout, keep, bs, scale)
            return dq, dk, dv

    return Emulated.apply(q, k, v)


@pytest.mark.parametrize(("n", "d", "bs", "k_factor"), [(64, 16, 16, 2), (96, 32, 8, 3), (64, 16, 16, 1)])
@pytest.mark.parametrize("masked", [False, True])
def test_emulated_cuda_kernels_equal_reference(emulated, n, d, bs, k_factor, masked):
    batch, heads = 2, 3
    gen = torch.Generator().manual_seed(n + d)
    q, k, v = (torch.randn(batch, heads, n, d, generator=gen).requires_grad_() for _ in range(3))
    layout = random_layout(n // bs, heads, k_factor, torch.Generator().manual_seed(1))
    keep = torch.ones(batch, n, dtype=torch.bool)
    if masked:
        keep[0, n - bs - 3:] = False      # padding at the end of the first sequence
        keep[1, ::5] = False              # scattered masked keys
    scale = 0.7 / d ** 0.5
    got = _forward_backward(lambda a, b, c: _emulated_attention(emulated, a, b, c, layout, bs, keep, scale), q, k, v)
    want = _forward_backward(lambda a, b, c: rsa_reference(a, b, c, layout, bs, key_keep=keep, scale=scale), q, k, v)
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, want):
        assert torch.isfinite(a).all(), name
        assert (a - b).abs().max().item() < 1e-5, (name, (a - b).abs().max().item())


def test_emulated_fully_masked_rows_and_bfloat16(emulated):
    batch, heads, n, d, bs = 2, 2, 48, 16, 16
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(batch, heads, n, d, generator=gen).requires_grad_() for _ in range(3))
    layout = random_layout(n // bs, heads, 2, torch.Generator().manual_seed(2))
    keep = torch.ones(batch, n, dtype=torch.bool)
    keep[1] = False  # the second sequence has no key at all: zeros everywhere
    got = _forward_backward(lambda a, b, c: _emulated_attention(emulated, a, b, c, layout, bs, keep, d ** -0.5),
                            q, k, v)
    want = _forward_backward(lambda a, b, c: rsa_reference(a, b, c, layout, bs, key_keep=keep), q, k, v)
    for a, b in zip(got, want):
        assert torch.count_nonzero(a[1]).item() == 0
        assert (a - b).abs().max().item() < 1e-5
    low = [t.detach().to(torch.bfloat16).requires_grad_() for t in (q, k, v)]
    got16 = _forward_backward(lambda a, b, c: _emulated_attention(emulated, a, b, c, layout, bs, keep, d ** -0.5),
                              *low)
    for a, b in zip(got16, want):
        assert a.dtype == torch.bfloat16 and (a.float() - b).abs().max().item() < 0.05


def test_transposed_layout_lists_the_query_blocks_of_each_key_block(emulated):
    heads, nb, bs, d = 4, 6, 4, 16
    layout = random_layout(nb, heads, 3, torch.Generator().manual_seed(4))
    x = torch.zeros(1, heads, nb * bs, d)
    out, lse = emulated.forward(x, x, x, layout, torch.empty(0, dtype=torch.bool), bs, 1.0)
    *_, transposed = emulated.backward(x, x, x, x, out, lse, layout, torch.empty(0, dtype=torch.bool), bs, 1.0)
    for head in range(heads):
        for key_block in range(nb):
            want = [i for i in range(nb) if key_block in layout[head, i].tolist()]
            row = transposed[head, key_block].tolist()
            assert [i for i in row if i >= 0] == want and row[len(want):] == [-1] * (len(row) - len(want))


def _gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if not rsa.cuda_kernel_available():
        pytest.fail("CUDA is available but the RSA extension was built without its CUDA kernels")


def _inputs(batch, heads, n, d, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, n, d, generator=gen).to("cuda", dtype).requires_grad_() for _ in range(3)]




@pytest.mark.parametrize("d", [32, 64, 128])
@pytest.mark.parametrize("masked", [False, True])
def test_cuda_kernel_equals_reference_float32(d, masked):
    _gpu()
    batch, heads, n, bs, k_factor = 2, 4, 256, 32, 4
    q, k, v = _inputs(batch, heads, n, d, torch.float32)
    layout = random_layout(n // bs, heads, k_factor, torch.Generator().manual_seed(3)).cuda()
    keep = None
    if masked:
        keep = torch.ones(batch, n, dtype=torch.bool, device="cuda")
        keep[0, 200:] = False
        keep[1, ::7] = False
    with _no_tf32():
        got = _forward_backward(lambda a, b, c: rsa_attention(a, b, c, layout, bs, key_keep=keep), q, k, v)
        want = _forward_backward(lambda a, b, c: rsa_reference(a, b, c, layout, bs, key_keep=keep), q, k, v)
    for a, b in zip(got, want):
        assert (a - b).abs().max().item() < 2e-4


def test_cuda_k1_equals_dense_sdpa_and_bf16_is_close():
    _gpu()
    batch, heads, n, d, bs = 1, 2, 512, 64, 64
    q, k, v = _inputs(batch, heads, n, d, torch.float32)
    layout = dense_layout(n // bs, heads).cuda()
    with _no_tf32():
        got = _forward_backward(lambda a, b, c: rsa_attention(a, b, c, layout, bs), q, k, v)
        want = _forward_backward(lambda a, b, c: F.scaled_dot_product_attention(a, b, c), q, k, v)
    for a, b in zip(got, want):
        assert (a - b).abs().max().item() < 2e-4
    qb, kb, vb = (t.detach().to(torch.bfloat16).requires_grad_() for t in (q, k, v))
    low = _forward_backward(lambda a, b, c: rsa_attention(a, b, c, layout, bs), qb, kb, vb)
    for a, b in zip(low, want):
        assert a.dtype == torch.bfloat16
        assert (a.float() - b).abs().max().item() < 0.02 * b.abs().max().item() + 1e-2


def test_cuda_fully_masked_rows_and_unattended_keys_get_zeros():
    _gpu()
    batch, heads, n, d, bs = 1, 2, 128, 32, 32
    q, k, v = _inputs(batch, heads, n, d, torch.float32)
    layout = random_layout(n // bs, heads, 2, torch.Generator().manual_seed(0)).cuda()
    keep = torch.zeros(batch, n, dtype=torch.bool, device="cuda")
    out, dq, dk, dv = _forward_backward(lambda a, b, c: rsa_attention(a, b, c, layout, bs, key_keep=keep), q, k, v)
    for tensor in (out, dq, dk, dv):
        assert torch.count_nonzero(tensor).item() == 0


class _no_tf32:
    """float32 matmuls of the reference without TF32 (the kernel accumulates in true float32)."""

    def __enter__(self):
        self.saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc):
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved
