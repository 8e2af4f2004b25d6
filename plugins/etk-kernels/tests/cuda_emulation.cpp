// The RSA CUDA kernels (etk_kernels/csrc/rsa_cuda_kernels.cuh) run on the CPU under an emulation of the CUDA
// execution model, for the tests on machines without a GPU: every thread block of the grid runs in turn,
// each of its threads as an OS thread with its own threadIdx / blockIdx, __syncthreads() as a barrier over
// the block's threads and dynamic shared memory as one buffer per block (filled with NaN before the block
// runs, so a read of anything the block did not stage shows up). The host side mirrors rsa_cuda.cu's launches.

#include <torch/extension.h>

#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace {

struct Dim3 {
  int x = 0, y = 0, z = 0;
};

thread_local Dim3 threadIdx, blockIdx, blockDim;
thread_local float* emulated_shared = nullptr;

class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}

  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int generation = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      released_.notify_all();
    } else {
      released_.wait(lock, [&] { return generation != generation_; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  int count_, arrived_ = 0, generation_ = 0;
};

thread_local Barrier* block_barrier = nullptr;

}  // namespace

#define RSA_EMULATE
#define __global__
#define __device__
#define RSA_SHARED_FLOATS(name) float* name = emulated_shared
#define RSA_SYNC() block_barrier->wait()
#include "rsa_cuda_kernels.cuh"

namespace {

template <typename Body>
void launch(int grid_x, int grid_y, int threads, size_t shared_floats, const Body& body) {
  std::vector<float> shared(shared_floats);
  for (int y = 0; y < grid_y; ++y) {
    for (int x = 0; x < grid_x; ++x) {
      std::fill(shared.begin(), shared.end(), std::numeric_limits<float>::quiet_NaN());
      Barrier barrier(threads);
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          threadIdx = {t, 0, 0};
          blockIdx = {x, y, 0};
          blockDim = {threads, 1, 1};
          emulated_shared = shared.data();
          block_barrier = &barrier;
          body();
        });
      }
      for (auto& thread : pool) thread.join();
    }
  }
}

const uint8_t* keep_pointer(const at::Tensor& keep) {
  return keep.defined() && keep.numel() > 0 ? keep.data_ptr<uint8_t>() : nullptr;
}

}  // namespace

std::vector<at::Tensor> emulated_forward(at::Tensor q, at::Tensor k, at::Tensor v, at::Tensor layout,
                                         at::Tensor keep, int64_t block_size, double scale) {
  q = q.contiguous();
  k = k.contiguous();
  v = v.contiguous();
  layout = layout.to(at::kInt).contiguous();
  if (keep.numel() > 0) keep = keep.to(at::kByte).contiguous();
  const int B = q.size(0), H = q.size(1), n = q.size(2), bs = block_size, nb = n / bs, width = layout.size(2);
  auto out = at::empty_like(q);
  auto lse = at::empty({B, H, n}, q.options().dtype(at::kFloat));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, q.scalar_type(), "emulated_forward", [&] {
    RSA_DISPATCH_HEAD_DIM(q.size(3), [&] {
      launch(B * H, nb, bs, rsa_cuda::forward_shared_floats(bs, HEAD_DIM), [&] {
        rsa_cuda::rsa_forward_kernel<scalar_t, HEAD_DIM>(
            q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), layout.data_ptr<int32_t>(),
            keep_pointer(keep), H, n, bs, nb, width, static_cast<float>(scale), out.data_ptr<scalar_t>(),
            lse.data_ptr<float>());
      });
    });
  });
  return {out, lse};
}

std::vector<at::Tensor> emulated_backward(at::Tensor grad_out, at::Tensor q, at::Tensor k, at::Tensor v,
                                          at::Tensor out, at::Tensor lse, at::Tensor layout, at::Tensor keep,
                                          int64_t block_size, double scale) {
  q = q.contiguous();
  k = k.contiguous();
  v = v.contiguous();
  grad_out = grad_out.to(q.scalar_type()).contiguous();
  lse = lse.to(at::kFloat).contiguous();
  auto delta = (grad_out.to(at::kFloat) * out.to(at::kFloat)).sum(-1).contiguous();
  layout = layout.to(at::kInt).contiguous();
  if (keep.numel() > 0) keep = keep.to(at::kByte).contiguous();
  const int B = q.size(0), H = q.size(1), n = q.size(2), bs = block_size, nb = n / bs, width = layout.size(2);
  auto tlayout = rsa_cuda::transpose_layout(layout, nb);
  const int twidth = tlayout.size(2);
  auto dq = at::empty_like(q);
  auto dk = at::empty_like(k);
  auto dv = at::empty_like(v);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, q.scalar_type(), "emulated_backward", [&] {
    RSA_DISPATCH_HEAD_DIM(q.size(3), [&] {
      launch(B * H, nb, bs, rsa_cuda::dq_shared_floats(bs, HEAD_DIM), [&] {
        rsa_cuda::rsa_backward_dq_kernel<scalar_t, HEAD_DIM>(
            grad_out.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
            lse.data_ptr<float>(), delta.data_ptr<float>(), layout.data_ptr<int32_t>(), keep_pointer(keep), H, n,
            bs, nb, width, static_cast<float>(scale), dq.data_ptr<scalar_t>());
      });
      launch(B * H, nb, bs, rsa_cuda::dkdv_shared_floats(bs, HEAD_DIM), [&] {
        rsa_cuda::rsa_backward_dkdv_kernel<scalar_t, HEAD_DIM>(
            grad_out.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
            lse.data_ptr<float>(), delta.data_ptr<float>(), tlayout.data_ptr<int32_t>(), keep_pointer(keep), H, n,
            bs, nb, twidth, static_cast<float>(scale), dk.data_ptr<scalar_t>(), dv.data_ptr<scalar_t>());
      });
    });
  });
  return {dq, dk, dv, tlayout};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &emulated_forward, "the CUDA forward kernel, emulated on the CPU -> [out, lse]");
  m.def("backward", &emulated_backward, "the CUDA backward kernels, emulated on the CPU -> [dq, dk, dv, tlayout]");
}
