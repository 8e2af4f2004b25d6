// Random Sparse Attention (RSA): the CUDA kernels (compiled only where torch has CUDA and a toolkit is found;
// rsa.cpp dispatches CUDA tensors here when built with RSA_WITH_CUDA).
//
// Same semantics as the CPU kernel in rsa.cpp: per (batch b, head h, query block i) the layout row
// layout[h, i, :] lists the key blocks the block attends to (-1 = none); masked keys (key_keep False) get
// probability 0; a row whose every key is masked outputs 0, has lse = +inf and gets zero gradients.
//
// Forward: one thread block per (query block, batch x head), one thread per query row. The key and value
// blocks of the row are staged in shared memory one at a time (all threads read the same key at once: a
// broadcast, no bank conflicts) and each thread keeps a streaming (online) softmax: running max m, running
// sum l and the unnormalised output in registers. Nothing of size n x n exists; lse = m + log(l) is saved.
//
// Backward (FlashAttention-2 style, no atomics, deterministic):
//   dQ kernel, one thread per query row, over the row's key blocks:   dq = scale * sum_c dS_c K_c
//   dK/dV kernel, one thread per key row, over the query blocks that attend to its key block (the transposed
//   layout, built on the device by `transpose_layout`):            dv = sum_r P_rc dO_r, dk = scale * sum_r dS_rc Q_r
//   with P = exp(scale * q.k - lse), dS = P * (dO.v - D_r) and D_r = rowsum(dO_r * O_r).
// Both recompute the scores instead of storing them. Inputs may be float32, float16 or bfloat16;
// accumulation is float32 and lse is float32. Head dims 16, 32, 64 and 128 are compiled.

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace {

constexpr float kInf = INFINITY;

template <typename scalar_t, int D>
__global__ void rsa_forward_kernel(const scalar_t* __restrict__ q, const scalar_t* __restrict__ k,
                                   const scalar_t* __restrict__ v, const int32_t* __restrict__ layout,
                                   const uint8_t* __restrict__ keep, int H, int n, int bs, int nb, int width,
                                   float scale, scalar_t* __restrict__ out, float* __restrict__ lse) {
  extern __shared__ float smem[];
  float* Ks = smem;             // [bs, D]
  float* Vs = Ks + bs * D;      // [bs, D]
  float* kbias = Vs + bs * D;   // [bs]: 0 (kept) or -inf (masked)
  const int i = blockIdx.x;
  const int bh = blockIdx.y;
  const int b = bh / H, h = bh % H;
  const int r = threadIdx.x;
  const int64_t base = static_cast<int64_t>(bh) * n * D;
  const int64_t row = base + static_cast<int64_t>(i * bs + r) * D;

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
    __syncthreads();  // the previous block's tiles are no longer read
    const int64_t kbase = base + static_cast<int64_t>(j) * bs * D;
    for (int t = threadIdx.x; t < bs * D; t += blockDim.x) {
      Ks[t] = static_cast<float>(k[kbase + t]);
      Vs[t] = static_cast<float>(v[kbase + t]);
    }
    for (int c = threadIdx.x; c < bs; c += blockDim.x) {
      kbias[c] = (keep == nullptr || keep[static_cast<int64_t>(b) * n + j * bs + c]) ? 0.f : -kInf;
    }
    __syncthreads();
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
  extern __shared__ float smem[];
  float* Ks = smem;
  float* Vs = Ks + bs * D;
  float* kbias = Vs + bs * D;
  const int i = blockIdx.x;
  const int bh = blockIdx.y;
  const int b = bh / H, h = bh % H;
  const int r = threadIdx.x;
  const int64_t base = static_cast<int64_t>(bh) * n * D;
  const int64_t row = base + static_cast<int64_t>(i * bs + r) * D;
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
    __syncthreads();
    const int64_t kbase = base + static_cast<int64_t>(j) * bs * D;
    for (int t = threadIdx.x; t < bs * D; t += blockDim.x) {
      Ks[t] = static_cast<float>(k[kbase + t]);
      Vs[t] = static_cast<float>(v[kbase + t]);
    }
    for (int c = threadIdx.x; c < bs; c += blockDim.x) {
      kbias[c] = (keep == nullptr || keep[static_cast<int64_t>(b) * n + j * bs + c]) ? 0.f : -kInf;
    }
    __syncthreads();
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
  extern __shared__ float smem[];
  float* Qs = smem;               // [bs, D], already scaled
  float* dOs = Qs + bs * D;       // [bs, D]
  float* lse_s = dOs + bs * D;    // [bs]
  float* delta_s = lse_s + bs;    // [bs]
  const int j = blockIdx.x;       // key block
  const int bh = blockIdx.y;
  const int b = bh / H, h = bh % H;
  const int c = threadIdx.x;      // key row within the block
  const int64_t base = static_cast<int64_t>(bh) * n * D;
  const int64_t row = base + static_cast<int64_t>(j * bs + c) * D;
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
    __syncthreads();
    const int64_t qbase = base + static_cast<int64_t>(i) * bs * D;
    for (int t = threadIdx.x; t < bs * D; t += blockDim.x) {
      Qs[t] = static_cast<float>(q[qbase + t]) * scale;
      dOs[t] = static_cast<float>(grad_out[qbase + t]);
    }
    for (int t = threadIdx.x; t < bs; t += blockDim.x) {
      lse_s[t] = lse[static_cast<int64_t>(bh) * n + i * bs + t];
      delta_s[t] = delta[static_cast<int64_t>(bh) * n + i * bs + t];
    }
    __syncthreads();
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
at::Tensor transpose_layout(const at::Tensor& layout, int64_t nb) {
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

void set_shared_memory(const void* kernel, size_t bytes) {
  if (bytes > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  }
}

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

struct CudaDims {
  int H, n, bs, nb, width;
};

CudaDims cuda_dims(const at::Tensor& q, const at::Tensor& layout, int64_t block_size) {
  TORCH_CHECK(q.scalar_type() == at::kFloat || q.scalar_type() == at::kHalf || q.scalar_type() == at::kBFloat16,
              "rsa (CUDA): the kernel takes float32, float16 or bfloat16");
  TORCH_CHECK(block_size >= 1 && block_size <= 1024, "rsa (CUDA): block_size must be in 1..1024");
  CudaDims dm;
  dm.H = static_cast<int>(q.size(1));
  dm.n = static_cast<int>(q.size(2));
  dm.bs = static_cast<int>(block_size);
  dm.nb = dm.n / dm.bs;
  dm.width = static_cast<int>(layout.size(2));
  return dm;
}

}  // namespace

std::vector<at::Tensor> rsa_forward_cuda(at::Tensor q, at::Tensor k, at::Tensor v, at::Tensor layout,
                                         at::Tensor key_keep, int64_t block_size, double scale) {
  const c10::cuda::CUDAGuard guard(q.device());
  const CudaDims dm = cuda_dims(q, layout, block_size);
  q = q.contiguous();
  k = k.contiguous();
  v = v.contiguous();
  auto layout_d = layout.to(q.device(), at::kInt).contiguous();
  at::Tensor keep;
  if (key_keep.defined() && key_keep.numel() > 0) keep = key_keep.to(q.device(), at::kByte).contiguous();
  auto out = at::empty_like(q);
  auto lse = at::empty({q.size(0), q.size(1), q.size(2)}, q.options().dtype(at::kFloat));
  const dim3 grid(dm.nb, q.size(0) * dm.H);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "rsa_forward_cuda", [&] {
    RSA_DISPATCH_HEAD_DIM(q.size(3), [&] {
      const size_t shared = (2 * dm.bs * HEAD_DIM + dm.bs) * sizeof(float);
      auto kernel = rsa_forward_kernel<scalar_t, HEAD_DIM>;
      set_shared_memory(reinterpret_cast<const void*>(kernel), shared);
      kernel<<<grid, dm.bs, shared, stream>>>(
          q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), layout_d.data_ptr<int32_t>(),
          keep.defined() ? keep.data_ptr<uint8_t>() : nullptr, dm.H, dm.n, dm.bs, dm.nb, dm.width,
          static_cast<float>(scale), out.data_ptr<scalar_t>(), lse.data_ptr<float>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {out, lse};
}

std::vector<at::Tensor> rsa_backward_cuda(at::Tensor grad_out, at::Tensor q, at::Tensor k, at::Tensor v,
                                          at::Tensor out, at::Tensor lse, at::Tensor layout, at::Tensor key_keep,
                                          int64_t block_size, double scale) {
  const c10::cuda::CUDAGuard guard(q.device());
  const CudaDims dm = cuda_dims(q, layout, block_size);
  q = q.contiguous();
  k = k.contiguous();
  v = v.contiguous();
  grad_out = grad_out.to(q.scalar_type()).contiguous();
  lse = lse.to(at::kFloat).contiguous();
  auto delta = (grad_out.to(at::kFloat) * out.to(at::kFloat)).sum(-1).contiguous();  // D_r = rowsum(dO * O)
  auto layout_d = layout.to(q.device(), at::kInt).contiguous();
  auto tlayout = transpose_layout(layout_d, dm.nb);
  const int twidth = static_cast<int>(tlayout.size(2));
  at::Tensor keep;
  if (key_keep.defined() && key_keep.numel() > 0) keep = key_keep.to(q.device(), at::kByte).contiguous();
  auto dq = at::empty_like(q);
  auto dk = at::empty_like(k);
  auto dv = at::empty_like(v);
  const dim3 grid(dm.nb, q.size(0) * dm.H);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "rsa_backward_cuda", [&] {
    RSA_DISPATCH_HEAD_DIM(q.size(3), [&] {
      const uint8_t* keep_ptr = keep.defined() ? keep.data_ptr<uint8_t>() : nullptr;
      const size_t shared_dq = (2 * dm.bs * HEAD_DIM + dm.bs) * sizeof(float);
      auto dq_kernel = rsa_backward_dq_kernel<scalar_t, HEAD_DIM>;
      set_shared_memory(reinterpret_cast<const void*>(dq_kernel), shared_dq);
      dq_kernel<<<grid, dm.bs, shared_dq, stream>>>(
          grad_out.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
          lse.data_ptr<float>(), delta.data_ptr<float>(), layout_d.data_ptr<int32_t>(), keep_ptr, dm.H, dm.n,
          dm.bs, dm.nb, dm.width, static_cast<float>(scale), dq.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const size_t shared_kv = (2 * dm.bs * HEAD_DIM + 2 * dm.bs) * sizeof(float);
      auto kv_kernel = rsa_backward_dkdv_kernel<scalar_t, HEAD_DIM>;
      set_shared_memory(reinterpret_cast<const void*>(kv_kernel), shared_kv);
      kv_kernel<<<grid, dm.bs, shared_kv, stream>>>(
          grad_out.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
          lse.data_ptr<float>(), delta.data_ptr<float>(), tlayout.data_ptr<int32_t>(), keep_ptr, dm.H, dm.n,
          dm.bs, dm.nb, twidth, static_cast<float>(scale), dk.data_ptr<scalar_t>(), dv.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {dq, dk, dv};
}
