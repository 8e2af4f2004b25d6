"""The RSA kernel: compiled CPU kernel vs the PyTorch reference vs dense SDPA, gradients, masking, export."""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from etk_kernels import rsa
from etk_kernels.layout import dense_layout, random_layout
from etk_kernels.rsa import RSAFunction, kernel_status, load_extension, rsa_attention, rsa_reference

ATOL = 1e-5


def _compiled():
    if load_extension() is None:
        pytest.skip("compiled RSA kernel unavailable (ETK_RSA_BACKEND=reference, or no C++ toolchain)")


def _run(impl: str, q, k, v, layout, bs, keep=None, scale=None):
    if impl == "reference":
        return rsa_reference(q, k, v, layout, bs, key_keep=keep, scale=scale)
    _compiled()
    return rsa_attention(q, k, v, layout, bs, key_keep=keep, scale=scale)


def _inputs(batch, heads, n, d, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, n, d, generator=gen, dtype=dtype).requires_grad_() for _ in range(3)]


def _grads(out, tensors, seed=1):
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad(out, tensors, g)


def _close(a, b, atol=ATOL):
    assert a.shape == b.shape
    assert torch.isfinite(a).all()
    assert (a - b).abs().max().item() <= atol, (a - b).abs().max().item()


@pytest.mark.parametrize("impl", ["reference", "compiled"])
@pytest.mark.parametrize("layout_kind", ["dense", "random_k1"])
@pytest.mark.parametrize("masked", [False, True])
def test_k1_layout_equals_dense_sdpa(impl, layout_kind, masked):
    batch, heads, n, d, bs = 2, 3, 48, 16, 16
    nb = n // bs
    layout = dense_layout(nb, heads) if layout_kind == "dense" else random_layout(nb, heads, 1, torch.Generator())
    q, k, v = _inputs(batch, heads, n, d)
    keep = None
    mask = None
    if masked:
        keep = torch.ones(batch, n, dtype=torch.bool)
        keep[0, 40:] = False
        keep[1, 5:9] = False
        mask = keep[:, None, None, :]
    out = _run(impl, q, k, v, layout, bs, keep)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    _close(out, ref)
    for got, want in zip(_grads(out, (q, k, v)), _grads(ref, (q, k, v))):
        _close(got, want)


@pytest.mark.parametrize("k_factor", [2, 4])
@pytest.mark.parametrize("n,d,bs", [(64, 16, 16), (100, 32, 16), (72, 16, 32), (128, 32, 8)])
def test_compiled_equals_reference(k_factor, n, d, bs):
    _compiled()
    batch, heads = 2, 4
    nb = math.ceil(n / bs)
    layout = random_layout(nb, heads, k_factor, torch.Generator().manual_seed(n + k_factor))
    keep = torch.rand(batch, n, generator=torch.Generator().manual_seed(3)) > 0.2
    for key_keep in (None, keep):
        q, k, v = _inputs(batch, heads, n, d, seed=n)
        out = rsa_attention(q, k, v, layout, bs, key_keep=key_keep)
        ref = rsa_reference(q, k, v, layout, bs, key_keep=key_keep)
        _close(out, ref)
        for got, want in zip(_grads(out, (q, k, v)), _grads(ref, (q, k, v))):
            _close(got, want)


def test_compiled_path_is_used_and_custom_scale():
    _compiled()
    q, k, v = _inputs(1, 2, 40, 8)
    layout = random_layout(5, 2, 2, torch.Generator().manual_seed(0))
    calls = []
    apply = RSAFunction.apply

    def spy(*args):
        calls.append(args)
        return apply(*args)

    RSAFunction.apply = spy
    try:
        out = rsa_attention(q, k, v, layout, 8, scale=0.3)
    finally:
        RSAFunction.apply = apply
    assert len(calls) == 1
    _close(out, rsa_reference(q, k, v, layout, 8, scale=0.3))
    assert kernel_status() == "compiled"


@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_float64(masked):
    _compiled()
    batch, heads, n, d, bs = 1, 2, 32, 8, 8
    layout = random_layout(n // bs, heads, 2, torch.Generator().manual_seed(5)).to(torch.int32)
    q, k, v = _inputs(batch, heads, n, d, dtype=torch.float64, seed=7)
    keep = None
    if masked:
        keep = torch.ones(batch, n, dtype=torch.bool)
        keep[0, 3] = keep[0, 17] = keep[0, 30] = False
    fn = lambda q, k, v: RSAFunction.apply(q, k, v, layout, keep, bs, 1.0 / math.sqrt(d))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (q, k, v), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("impl", ["reference", "compiled"])
def test_masked_keys_do_not_leak(impl):
    batch, heads, n, d, bs = 2, 4, 60, 16, 16  # n is not a multiple of the block size
    layout = random_layout(math.ceil(n / bs), heads, 2, torch.Generator().manual_seed(2))
    keep = torch.ones(batch, n, dtype=torch.bool)
    keep[0, 50:] = False
    keep[1, 10:20] = False
    q, k, v = _inputs(batch, heads, n, d)
    out = _run(impl, q, k, v, layout, bs, keep).detach()
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[~keep[:, None, :, None].expand_as(k2)] = 1e4  # huge values on the masked keys only
    v2[~keep[:, None, :, None].expand_as(v2)] = -1e4
    out2 = _run(impl, q.detach(), k2, v2, layout, bs, keep).detach()
    rows = keep[:, None, :, None].expand_as(out)
    _close(out[rows], out2[rows], atol=0.0)


@pytest.mark.parametrize("impl", ["reference", "compiled"])
def test_fully_masked_rows_give_zero(impl):
    batch, heads, n, d, bs = 2, 2, 32, 8, 8
    layout = random_layout(n // bs, heads, 2, torch.Generator().manual_seed(4))
    keep = torch.ones(batch, n, dtype=torch.bool)
    keep[1] = False  # the second sequence has no key at all
    q, k, v = _inputs(batch, heads, n, d)
    out = _run(impl, q, k, v, layout, bs, keep)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    grads = _grads(out, (q, k, v))
    for g in grads:
        assert torch.isfinite(g).all()
        assert torch.equal(g[1], torch.zeros_like(g[1]))


def test_layout_padding_entries_are_ignored():
    """-1 entries (wherever they are) select nothing; a row of only -1 gives 0."""
    heads, n, d, bs = 2, 32, 8, 8
    nb = n // bs
    layout = torch.full((heads, nb, 3), -1, dtype=torch.int32)
    for i in range(nb):
        layout[:, i, 0] = i
        layout[0, i, 1] = (i + 1) % nb
    layout[1, 2] = -1  # head 1, query block 2: no key block at all
    q, k, v = _inputs(1, heads, n, d)
    ref = rsa_reference(q, k, v, layout, bs)
    assert torch.equal(ref[0, 1, 16:24], torch.zeros(8, d))
    dense = torch.zeros(heads, nb, nb, dtype=torch.bool)  # the same pattern as a boolean block mask
    for h in range(heads):
        for i in range(nb):
            for j in layout[h, i].tolist():
                if j >= 0:
                    dense[h, i, j] = True
    mask = dense.repeat_interleave(bs, 1).repeat_interleave(bs, 2)[None]
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).nan_to_num(0.0)
    _close(ref, want)
    if load_extension() is not None:
        _close(rsa_attention(q, k, v, layout, bs), ref)


def test_backend_env_forces_reference(monkeypatch):
    monkeypatch.setenv("ETK_RSA_BACKEND", "reference")
    assert load_extension() is None
    assert kernel_status() == "reference"
    q, k, v = _inputs(1, 2, 16, 8)
    layout = random_layout(2, 2, 2, torch.Generator().manual_seed(0))
    _close(rsa_attention(q, k, v, layout, 8), rsa_reference(q, k, v, layout, 8))


def test_bfloat16_runs_the_reference():
    q, k, v = (t.detach().to(torch.bfloat16) for t in _inputs(1, 2, 16, 8))
    layout = random_layout(2, 2, 2, torch.Generator().manual_seed(0))
    out = rsa_attention(q, k, v, layout, 8)
    assert out.dtype == torch.bfloat16
    want = rsa_reference(q.float(), k.float(), v.float(), layout, 8)
    assert (out.float() - want).abs().max().item() < 5e-2


def test_bad_layout_shape_is_rejected():
    q, k, v = _inputs(1, 2, 16, 8)
    with pytest.raises(ValueError):
        rsa_attention(q, k, v, torch.zeros(2, 3, 2, dtype=torch.int32), 8)


def test_reference_exports_to_onnx():
    ort = pytest.importorskip("onnxruntime")

    class Attn(torch.nn.Module):
        def __init__(self, layout):
            super().__init__()
            self.register_buffer("layout", layout)

        def forward(self, q, k, v, keep):
            return rsa_attention(q, k, v, self.layout, 8, key_keep=keep)

    model = Attn(random_layout(4, 2, 2, torch.Generator().manual_seed(0)))
    q, k, v = (t.detach() for t in _inputs(1, 2, 30, 8))
    keep = torch.ones(1, 30, dtype=torch.bool)
    keep[0, 25:] = False
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (q, k, v, keep), buf, opset_version=17, dynamo=False,
                          input_names=["q", "k", "v", "keep"])
    session = ort.InferenceSession(buf.getvalue())
    got = session.run(None, {"q": q.numpy(), "k": k.numpy(), "v": v.numpy(), "keep": keep.numpy()})[0]
    _close(torch.from_numpy(got), model(q, k, v, keep))


def test_extension_cache_is_reused():
    _compiled()
    first = load_extension()
    assert load_extension() is first
    assert rsa._EXT is first
