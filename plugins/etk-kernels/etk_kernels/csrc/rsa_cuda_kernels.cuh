// Random Sparse Attention (RSA): the CUDA kernels' code, shared by rsa_cuda.cu (compiled by nvcc) and by the
// tests' CPU emulation of the CUDA execution model (tests/cuda_emulation.cpp defines RSA_EMULATE and the
// names below before including this file), so that the kernels' indexing, masking, streaming softmax and
// backward are checked on machines without a GPU. What the kernels do: see rsa_cuda.cu.

#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#ifndef RSA_EMULATE
#define RSA_SHARED_FLOATS(name) extern __shared__ float name[]
#define RSA_SYNC() __syncthreads()
#endif

// Instantiates the body for the head dims the kernels are compiled for (HEAD_DIM inside it).
#define RSA_DISPATCH_HEAD_DIM(d, ...)                                                    \
  [&] {                                                                                  \
    switch (d) {                                                                         \
      case 16: { constexpr int HEAD_DIM = 16; return __VA_ARGS__(); }                    \
      case 32: { constexpr int HEAD_DIM = 32; return __VA_ARGS__(); }                    \
      case 64: { constexpr int HEAD_DIM = 64; return __VA_ARGS__(); }                    \
      case 128: { constexpr int HEAD_DIM = 128; return __VA_ARGS__(); }                  \
      default: TORCH_CHECK(false, "rsa (CUDA): head dim ", d, " is not one of 16, 32, 64, 128"); \
    }                                                                                    \
  }()

namespace rsa_cuda {

constexpr float kInf = INFINITY;

// Floats of dynamic shared memory each kernel takes.
inline size_t forward_shared_floats(int bs, int d) { return static_cast<size_t>(2 * bs * d + bs); }
inline size_t dq_shared_floats(int bs, int d) { return static_cast<size_t>(2 * bs * d + bs); }
inline size_t dkdv_shared_floats(int bs, int d) { return static_cast<size_t>(2 * bs * d + 2 * bs); }

// Where a thread is: batch x head bh = b * H + h (grid x: its limit is 2^31 - 1, y's only 65535), block
// (grid y), row in the block (thread x); base = offset of (b, h) in [B, H, n, D], offset = of this row.
struct BlockRow {
  int bh, b, h, block, row;
  int64_t base, offset;
};

__device__ inline BlockRow block_row(int H, int n, int bs, int D) {
  BlockRow at;
  at.bh = blockIdx.x;
  at.b = at.bh / H;
  at.h = at.bh % H;
  at.block = blockIdx.y;
  at.row = threadIdx.x;
  at.base = static_cast<int64_t>(at.bh) * n * D;
  at.offset = at.base + static_cast<int64_t>(at.block * bs + at.row) * D;
  return at;
}

// Copies key block j (rows kbase .. + bs) of K and V into shared memory as float, and its keys' mask as an
// additive bias (0 kept, -inf masked); every thread of the block takes part.
template <typename scalar_t, int D>
__device__ inline void stage_key_block(const scalar_t* __restrict__ k, const scalar_t* __restrict__ v,
                                       const uint8_t* __restrict__ keep, int64_t kbase, int64_t keep_base, int bs,
                                       float* Ks, float* Vs, float* kbias) {
  for (int t = threadIdx.x; t < bs * D; t += blockDim.x) {
    Ks[t] = static_cast<float>(k[kbase + t]);
    Vs[t] = static_cast<float>(v[kbase + t]);
  }
  for (int c = threadIdx.x; c < bs; c += blockDim.x) {
    kbias[c] = (keep == nullptr || keep[keep_base + c]) ? 0.f : -kInf;
  }
}

template <typename scalar_t, int D>
__global__ void rsa_forward_kernel(const scalar_t* __restrict__ q, const scalar_t* __restrict__ k,
                                   const scalar_t* __restrict__ v, const int32_t* __restrict__ layout,
                                   const uint8_t* __restrict__ keep, int H, int n, int bs, int nb, int width,
                                   float scale, scalar_t* __restrict__ out, float* __restrict__ lse) {
  RSA_SHARED_FLOATS(smem);
  float* Ks = smem;             // [bs, D]
  float* Vs = Ks + bs * D;      // [bs, D]
  float* kbias = Vs + bs * D;   // [bs]: 0 (kept) or -inf (masked)
  const BlockRow at = block_row(H, n, bs, D);
  const int bh = at.bh, b = at.b, h = at.h, i = at.block, r = at.row;
  const int64_t base = at.base, row = at.offset;

  float qr[D], acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) {
    qr[d] = static_cast<float>(q[row + d]) * scale;
    acc[d] = 0.f;
  }
  float m = -kInf, l = 0.f;
  const int32_t* lrow = layout + (static_cast<int64_t>(h) * nb + i) * width;
  for (int w = 0; w < width; ++w) {
    const int j = lrow[w];  // the same for every thread of the block
    if (j < 0 || j >= nb) continue;
    RSA_SYNC();  // the previous block's tiles are no longer read
    stage_key_block<scalar_t, D>(k, v, keep, base + static_cast<int64_t>(j) * bs * D,
                                 static_cast<int64_t>(b) * n + j * bs, bs, Ks, Vs, kbias);
    RSA_SYNC();
    for (int c = 0; c < bs; ++c) {
      if (kbias[c] != 0.f) continue;
      float s = 0.f;
#pragma unroll
      for (int d = 0; d < D; ++d) s += qr[d] * Ks[c * D + d];
      if (s > m) {  // a new running max: rescale what was summed so far (exp(-inf) = 0 on the first key)
        const float correction = expf(m - s);
        l *= correction;
#pragma unroll
        for (int d = 0; d < D; ++d) acc[d] *= correction;
        m = s;
      }
      const float p = expf(s - m);
      l += p;
#pragma unroll
      for (int d = 0; d < D; ++d) acc[d] += p * Vs[c * D + d];
    }
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
  for (int d = 0; d < D; ++d) out[row + d] = static_cast<scalar_t>(acc[d] * inv);
  lse[static_cast<int64_t>(bh) * n + i * bs + r] = l > 0.f ? m + logf(l) : kInf;
}

template <typename scalar_t, int D>
__global__ void rsa_backward_dq_kernel(const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ q,
                                       const scalar_t* __restrict__ k, const scalar_t* __restrict__ v,
                                       const float* __restrict__ lse, const float* __restrict__ delta,
                                       const int32_t* __restrict__ layout, const uint8_t* __restrict__ keep,
                                       int H, int n, int bs, int nb, int width, float scale,
                                       scalar_t* __restrict__ dq) {
  RSA_SHARED_FLOATS(smem);
  float* Ks = smem;
  float* Vs = Ks + bs * D;
  float* kbias = Vs + bs * D;
  const BlockRow at = block_row(H, n, bs, D);
  const int bh = at.bh, b = at.b, h = at.h, i = at.block, r = at.row;
  const int64_t base = at.base, row = at.offset;
  const float lse_r = lse[static_cast<int64_t>(bh) * n + i * bs + r];
  const float delta_r = delta[static_cast<int64_t>(bh) * n + i * bs + r];

  float qr[D], dor[D], acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) {
    qr[d] = static_cast<float>(q[row + d]) * scale;
    dor[d] = static_cast<float>(grad_out[row + d]);
    acc[d] = 0.f;
  }
  const int32_t* lrow = layout + (static_cast<int64_t>(h) * nb + i) * width;
  for (int w = 0; w < width; ++w) {
    const int j = lrow[w];
    if (j < 0 || j >= nb) continue;
    RSA_SYNC();  // the previous block's tiles are no longer read
    stage_key_block<scalar_t, D>(k, v, keep, base + static_cast<int64_t>(j) * bs * D,
                                 static_cast<int64_t>(b) * n + j * bs, bs, Ks, Vs, kbias);
    RSA_SYNC();
    if (lse_r == kInf) continue;  // every key of the row is masked: no gradient
    for (int c = 0; c < bs; ++c) {
      if (kbias[c] != 0.f) continue;
      float s = 0.f, dp = 0.f;
#pragma unroll
      for (int d = 0; d < D; ++d) {
        s += qr[d] * Ks[c * D + d];
        dp += dor[d] * Vs[c * D + d];
      }
      const float ds = expf(s - lse_r) * (dp - delta_r);
#pragma unroll
      for (int d = 0; d < D; ++d) acc[d] += ds * Ks[c * D + d];
    }
  }
#pragma unroll
  for (int d = 0; d < D; ++d) dq[row + d] = static_cast<scalar_t>(acc[d] * scale);
}

template <typename scalar_t, int D>
__global__ void rsa_backward_dkdv_kernel(const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ q,
                                         const scalar_t* __restrict__ k, const scalar_t* __restrict__ v,
                                         const float* __restrict__ lse, const float* __restrict__ delta,
                                         const int32_t* __restrict__ tlayout, const uint8_t* __restrict__ keep,
                                         int H, int n, int bs, int nb, int twidth, float scale,
                                         scalar_t* __restrict__ dk, scalar_t* __restrict__ dv) {
  RSA_SHARED_FLOATS(smem);
  float* Qs = smem;               // [bs, D], already scaled
  float* dOs = Qs + bs * D;       // [bs, D]
  float* lse_s = dOs + bs * D;    // [bs]
  float* delta_s = lse_s + bs;    // [bs]
  const BlockRow at = block_row(H, n, bs, D);
  const int bh = at.bh, b = at.b, h = at.h, j = at.block, c = at.row;  // j: key block, c: key row in it
  const int64_t base = at.base, row = at.offset;
  const bool kept = keep == nullptr || keep[static_cast<int64_t>(b) * n + j * bs + c];

  float kc[D], vc[D], dkc[D], dvc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) {
    kc[d] = static_cast<float>(k[row + d]);
    vc[d] = static_cast<float>(v[row + d]);
    dkc[d] = 0.f;
    dvc[d] = 0.f;
  }
  const int32_t* trow = tlayout + (static_cast<int64_t>(h) * nb + j) * twidth;
  for (int w = 0; w < twidth; ++w) {
    const int i = trow[w];  // a query block attending to key block j
    if (i < 0 || i >= nb) continue;
    RSA_SYNC();
    const int64_t qbase = base + static_cast<int64_t>(i) * bs * D;
    for (int t = threadIdx.x; t < bs * D; t += blockDim.x) {
      Qs[t] = static_cast<float>(q[qbase + t]) * scale;
      dOs[t] = static_cast<float>(grad_out[qbase + t]);
    }
    for (int t = threadIdx.x; t < bs; t += blockDim.x) {
      lse_s[t] = lse[static_cast<int64_t>(bh) * n + i * bs + t];
      delta_s[t] = delta[static_cast<int64_t>(bh) * n + i * bs + t];
    }
    RSA_SYNC();
    if (!kept) continue;
    for (int r = 0; r < bs; ++r) {
      if (lse_s[r] == kInf) continue;
      float s = 0.f, dp = 0.f;
#pragma unroll
      for (int d = 0; d < D; ++d) {
        s += Qs[r * D + d] * kc[d];
        dp += dOs[r * D + d] * vc[d];
      }
      const float p = expf(s - lse_s[r]);
      const float ds = p * (dp - delta_s[r]);
#pragma unroll
      for (int d = 0; d < D; ++d) {
        dvc[d] += p * dOs[r * D + d];
        dkc[d] += ds * Qs[r * D + d];  // Qs holds scale * q: dk = scale * sum dS q
      }
    }
  }
#pragma unroll
  for (int d = 0; d < D; ++d) {
    dk[row + d] = static_cast<scalar_t>(dkc[d]);
    dv[row + d] = static_cast<scalar_t>(dvc[d]);
  }
}

// For every (head, key block), the query blocks whose layout row lists it: [H, nb, twidth], ascending, -1
// padded (the CSR-like layout read by columns; what the dK/dV kernel walks).
inline at::Tensor transpose_layout(const at::Tensor& layout, int64_t nb) {
  const auto H = layout.size(0);
  auto valid = layout.ge(0).logical_and(layout.lt(nb));
  auto idx = layout.clamp(0, nb - 1).to(at::kLong);
  auto incidence = at::zeros({H, nb, nb}, layout.options().dtype(at::kInt));  // [h, query block, key block]
  incidence.scatter_add_(2, idx, valid.to(at::kInt));
  auto by_key = incidence.transpose(1, 2).gt(0);                               // [h, key block, query block]
  const auto twidth = std::max<int64_t>(1, by_key.sum(-1).max().item<int64_t>());
  auto order = at::arange(nb, layout.options().dtype(at::kLong)).view({1, 1, nb}).expand({H, nb, nb});
  auto ranked = std::get<0>(at::where(by_key, order, order + nb).sort(-1)).narrow(-1, 0, twidth);
  return at::where(ranked.lt(nb), ranked, at::full_like(ranked, -1)).to(at::kInt).contiguous();
}

}  // namespace rsa_cuda
