// Random Sparse Attention (RSA): the CUDA kernels (compiled only where torch has CUDA and a toolkit is found;
// rsa.cpp dispatches CUDA tensors here when built with RSA_WITH_CUDA).
//
// Same semantics as the CPU kernel in rsa.cpp: per (batch b, head h, query block i) the layout row
// layout[h, i, :] lists the key blocks the block attends to (-1 = none); masked keys (key_keep False) get
// probability 0; a row whose every key is masked outputs 0, has lse = +inf and gets zero gradients.
//
// Forward: one thread block per (batch x head, query block), one thread per query row. The key and value
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

#include <cstdint>
#include <vector>

#include "rsa_cuda_kernels.cuh"

namespace {

using namespace rsa_cuda;

// float32, float16 and bfloat16 only (float64 would only cost compile time: it is refused before dispatch).
#define RSA_DISPATCH_CUDA_TYPES(TYPE, NAME, ...)                                         \
  AT_DISPATCH_SWITCH(TYPE, NAME, AT_DISPATCH_CASE(at::kFloat, __VA_ARGS__)              \
                     AT_DISPATCH_CASE(at::kHalf, __VA_ARGS__) AT_DISPATCH_CASE(at::kBFloat16, __VA_ARGS__))

void set_shared_memory(const void* kernel, size_t bytes) {
  if (bytes > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
  }
}

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
  const dim3 grid(q.size(0) * dm.H, dm.nb);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  RSA_DISPATCH_CUDA_TYPES(q.scalar_type(), "rsa_forward_cuda", [&] {
    RSA_DISPATCH_HEAD_DIM(q.size(3), [&] {
      const size_t shared = forward_shared_floats(dm.bs, HEAD_DIM) * sizeof(float);
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
  const dim3 grid(q.size(0) * dm.H, dm.nb);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  RSA_DISPATCH_CUDA_TYPES(q.scalar_type(), "rsa_backward_cuda", [&] {
    RSA_DISPATCH_HEAD_DIM(q.size(3), [&] {
      const uint8_t* keep_ptr = keep.defined() ? keep.data_ptr<uint8_t>() : nullptr;
      const size_t shared_dq = dq_shared_floats(dm.bs, HEAD_DIM) * sizeof(float);
      auto dq_kernel = rsa_backward_dq_kernel<scalar_t, HEAD_DIM>;
      set_shared_memory(reinterpret_cast<const void*>(dq_kernel), shared_dq);
      dq_kernel<<<grid, dm.bs, shared_dq, stream>>>(
          grad_out.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
          lse.data_ptr<float>(), delta.data_ptr<float>(), layout_d.data_ptr<int32_t>(), keep_ptr, dm.H, dm.n,
          dm.bs, dm.nb, dm.width, static_cast<float>(scale), dq.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const size_t shared_kv = dkdv_shared_floats(dm.bs, HEAD_DIM) * sizeof(float);
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
