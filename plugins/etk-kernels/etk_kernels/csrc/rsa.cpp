// Random Sparse Attention (RSA): a block-sparse attention kernel for the CPU.
//
// Per (batch b, head h, query block i) the layout row layout[h, i, :] lists the key blocks the block
// attends to (ascending, -1 = no block). The kernel never materialises the dense n x n scores: a task holds
// the scores of one query block against its L selected key blocks, [bs, L * bs].
//
// Forward, per task (b, h, i):
//   S_l = Q_i K_{j_l}^T                (one small GEMM per selected key block j_l, written side by side)
//   P   = softmax(scale * S + mask)    (row max subtracted; masked keys get exactly 0)
//   O_i = (sum_l P_l V_{j_l}) / rowsum (GEMMs accumulate into the output rows)
//   lse = row max + log(rowsum)        (saved for backward; +inf for a row with every key masked)
// Backward, per (b, h), query blocks in order (so no two threads touch the same dK / dV rows):
//   P = exp(scale * S + mask - lse);  dP = dO_i V_g^T;  D = rowsum(dO_i * O_i);  dS = scale * P * (dP - D)
//   dQ_i = dS K_g;  dK_g += dS^T Q_i;  dV_g += P^T dO_i
//
// All GEMMs are row-major "NN" products on raw pointers: at::native::cpublas::brgemm for float32 (oneDNN's
// micro-kernel where the CPU has it, torch's BLAS otherwise), at::mm on strided views for float64 (used by
// gradcheck; speed does not matter there). The products that need a transposed operand (Q K^T, dO V^T,
// dS^T Q, P^T dO) read blockwise-transposed copies of K, V, Q and dO ([n_b, d, bs]: every block stored as
// its own transpose), which are made once per (b, h) instead of once per query block.
//
// The elementwise loops of float32 (softmax, exp) are compiled for several x86 ISA levels (GCC
// target_clones, dispatched at load time), so the build needs no -march flag and runs on any x86-64.
//
// CUDA tensors go to the kernels of rsa_cuda.cu when the module is built with RSA_WITH_CUDA (setup.py does
// so where torch has CUDA and a CUDA toolkit is found); otherwise they are rejected.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <torch/python.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RSA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RSA_CLONES
#endif

#ifdef RSA_WITH_CUDA
// rsa_cuda.cu
std::vector<at::Tensor> rsa_forward_cuda(at::Tensor q, at::Tensor k, at::Tensor v, at::Tensor layout,
                                         at::Tensor key_keep, int64_t block_size, double scale);
std::vector<at::Tensor> rsa_backward_cuda(at::Tensor grad_out, at::Tensor q, at::Tensor k, at::Tensor v,
                                          at::Tensor out, at::Tensor lse, at::Tensor layout, at::Tensor key_keep,
                                          int64_t block_size, double scale);
#endif

namespace {

// ------------------------------------------------------------------------------------------------ GEMM

// Row-major C[M, N] (=|+=) A[M, K] B[K, N], with leading dimensions lda, ldb, ldc.
inline void gemm_nn(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float* C, int64_t ldc, bool accumulate) {
#ifdef CPUBLAS_BRGEMM_F32F32F32
  at::native::cpublas::brgemm(M, N, K, lda, ldb, ldc, accumulate, A, B, C, /*is_vnni=*/false);
#else
  auto opts = at::TensorOptions().dtype(at::kFloat);
  auto a = at::from_blob(const_cast<float*>(A), {M, K}, {lda, 1}, opts);
  auto b = at::from_blob(const_cast<float*>(B), {K, N}, {ldb, 1}, opts);
  auto c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  if (accumulate) c.addmm_(a, b); else c.copy_(at::mm(a, b));
#endif
}

inline void gemm_nn(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb,
                    double* C, int64_t ldc, bool accumulate) {
  auto opts = at::TensorOptions().dtype(at::kDouble);
  auto a = at::from_blob(const_cast<double*>(A), {M, K}, {lda, 1}, opts);
  auto b = at::from_blob(const_cast<double*>(B), {K, N}, {ldb, 1}, opts);
  auto c = at::from_blob(C, {M, N}, {ldc, 1}, opts);
  if (accumulate) c.addmm_(a, b); else c.copy_(at::mm(a, b));
}

inline void gemm_release() {
#ifdef CPUBLAS_BRGEMM_F32F32F32
  at::native::cpublas::brgemm_release(/*is_vnni=*/false);
#endif
}

// -------------------------------------------------------------------------------------- elementwise

// exp(x) for float, branch-free so the loops around it vectorise: Cody-Waite range reduction by ln 2, a
// degree-6 polynomial on [-ln2/2, ln2/2], and 2^k built in the exponent bits. Relative error ~2 ulp.
// x below the float range (masked keys: -inf) gives exactly 0.
inline float exp_f32(float x) {
  const float lo = -87.3365447505f;
  const float hi = 88.0f;
  float xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer
  float kf = (xc * 1.44269504088896341f + magic) - magic;
  float r = xc - kf * 0.693359375f;
  r = r - kf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(kf) + 127) << 23;
  float two_k;
  std::memcpy(&two_k, &bits, sizeof(two_k));
  float y = p * two_k;
  return x < lo ? 0.0f : y;
}

// Forward softmax of `rows` rows of `cols` scores (row stride cols), in place: x = scale * s + bias (bias 0
// or -inf per key, or none), then exp(x - max). Writes lse per row and 1 / rowsum (0 for a fully masked row,
// whose probabilities are set to 0 and lse to +inf).
RSA_CLONES
void softmax_rows(float* S, int64_t rows, int64_t cols, const float* bias, float scale, float* lse, float* inv) {
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float* x = S + r * cols;
    float m = -inf;
    if (bias) {
#pragma omp simd reduction(max : m)
      for (int64_t c = 0; c < cols; ++c) {
        float t = x[c] * scale + bias[c];
        x[c] = t;
        m = t > m ? t : m;
      }
    } else {
#pragma omp simd reduction(max : m)
      for (int64_t c = 0; c < cols; ++c) {
        float t = x[c] * scale;
        x[c] = t;
        m = t > m ? t : m;
      }
    }
    if (!(m > -inf)) {  // every key masked
      std::fill(x, x + cols, 0.0f);
      lse[r] = inf;
      inv[r] = 0.0f;
      continue;
    }
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < cols; ++c) {
      float e = exp_f32(x[c] - m);
      x[c] = e;
      s += e;
    }
    lse[r] = m + std::log(s);
    inv[r] = 1.0f / s;
  }
}

// Backward probabilities, in place: P = exp(scale * s + bias - lse); a row with lse = +inf gives 0.
RSA_CLONES
void probs_rows(float* S, int64_t rows, int64_t cols, const float* bias, float scale, const float* lse) {
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float* x = S + r * cols;
    const float l = lse[r];
    if (!(l < inf)) {
      std::fill(x, x + cols, 0.0f);
      continue;
    }
    if (bias) {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) x[c] = exp_f32(x[c] * scale + bias[c] - l);
    } else {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) x[c] = exp_f32(x[c] * scale - l);
    }
  }
}

// dS = scale * P * (dP - D_row), in place in dP.
RSA_CLONES
void dscores_rows(float* dP, const float* P, int64_t rows, int64_t cols, const float* D, float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    float* g = dP + r * cols;
    const float* p = P + r * cols;
    const float dr = D[r];
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) g[c] = scale * p[c] * (g[c] - dr);
  }
}

// Generic (float64) versions of the three loops above, same semantics.
template <typename T>
void softmax_rows(T* S, int64_t rows, int64_t cols, const T* bias, T scale, T* lse, T* inv) {
  const T inf = std::numeric_limits<T>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    T* x = S + r * cols;
    T m = -inf;
    for (int64_t c = 0; c < cols; ++c) {
      T t = x[c] * scale + (bias ? bias[c] : T(0));
      x[c] = t;
      m = t > m ? t : m;
    }
    if (!(m > -inf)) {
      std::fill(x, x + cols, T(0));
      lse[r] = inf;
      inv[r] = T(0);
      continue;
    }
    T s = 0;
    for (int64_t c = 0; c < cols; ++c) {
      T e = std::exp(x[c] - m);
      x[c] = e;
      s += e;
    }
    lse[r] = m + std::log(s);
    inv[r] = T(1) / s;
  }
}

template <typename T>
void probs_rows(T* S, int64_t rows, int64_t cols, const T* bias, T scale, const T* lse) {
  const T inf = std::numeric_limits<T>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    T* x = S + r * cols;
    const T l = lse[r];
    if (!(l < inf)) {
      std::fill(x, x + cols, T(0));
      continue;
    }
    for (int64_t c = 0; c < cols; ++c) x[c] = std::exp(x[c] * scale + (bias ? bias[c] : T(0)) - l);
  }
}

template <typename T>
void dscores_rows(T* dP, const T* P, int64_t rows, int64_t cols, const T* D, T scale) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dP[r * cols + c] = scale * P[r * cols + c] * (dP[r * cols + c] - D[r]);
  }
}

// ---------------------------------------------------------------------------------------- helpers

// src: [n_b * bs, d] row-major -> dst: [n_b, d, bs] (each block transposed).
template <typename T>
void transpose_blocks(const T* src, T* dst, int64_t nb, int64_t bs, int64_t d) {
  for (int64_t j = 0; j < nb; ++j) {
    const T* s = src + j * bs * d;
    T* t = dst + j * d * bs;
    for (int64_t r = 0; r < bs; ++r) {
      for (int64_t c = 0; c < d; ++c) t[c * bs + r] = s[r * d + c];
    }
  }
}

// The reverse: src [n_b, d, bs] -> dst [n_b * bs, d].
template <typename T>
void untranspose_blocks(const T* src, T* dst, int64_t nb, int64_t bs, int64_t d) {
  for (int64_t j = 0; j < nb; ++j) {
    const T* s = src + j * d * bs;
    T* t = dst + j * bs * d;
    for (int64_t c = 0; c < d; ++c) {
      for (int64_t r = 0; r < bs; ++r) t[r * d + c] = s[c * bs + r];
    }
  }
}

// The selected key blocks of one layout row (non-negative entries; -1 entries are skipped wherever they are).
inline int64_t row_blocks(const int32_t* row, int64_t width, int64_t nb, int64_t* out) {
  int64_t L = 0;
  for (int64_t w = 0; w < width; ++w) {
    const int32_t j = row[w];
    if (j < 0) continue;
    TORCH_CHECK(j < nb, "rsa: layout entry ", j, " out of range for ", nb, " key blocks");
    out[L++] = j;
  }
  return L;
}

// Additive key bias (0 kept, -inf masked) of the selected blocks; returns false when every key is kept.
template <typename T>
bool key_bias(const uint8_t* keep, const int64_t* blocks, int64_t L, int64_t bs, T* bias) {
  if (!keep) return false;
  bool any_masked = false;
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t l = 0; l < L; ++l) {
    const uint8_t* kb = keep + blocks[l] * bs;
    for (int64_t c = 0; c < bs; ++c) {
      const bool kept = kb[c] != 0;
      bias[l * bs + c] = kept ? T(0) : ninf;
      any_masked |= !kept;
    }
  }
  return any_masked;
}

struct Dims {
  int64_t B, H, n, d, bs, nb, width;
};

Dims check_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& layout,
                  const at::Tensor& key_keep, int64_t block_size) {
  TORCH_CHECK(k.device() == q.device() && v.device() == q.device(), "rsa: q, k and v must be on one device");
  TORCH_CHECK(q.dim() == 4, "rsa: q must be [B, H, n, d]");
  TORCH_CHECK(k.sizes() == q.sizes() && v.sizes() == q.sizes(), "rsa: q, k and v must have the same shape");
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "rsa: q, k and v must have the same dtype");
  TORCH_CHECK(q.is_cuda() || q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble,
              "rsa: the CPU kernel takes float32 or float64");
  Dims dm;
  dm.B = q.size(0);
  dm.H = q.size(1);
  dm.n = q.size(2);
  dm.d = q.size(3);
  dm.bs = block_size;
  TORCH_CHECK(block_size > 0 && dm.n % block_size == 0, "rsa: n (", dm.n, ") must be a multiple of block_size (",
              block_size, ")");
  dm.nb = dm.n / block_size;
  TORCH_CHECK(layout.dim() == 3 && layout.size(0) == dm.H && layout.size(1) == dm.nb,
              "rsa: layout must be [H, n / block_size, width]");
  dm.width = layout.size(2);
  if (key_keep.defined() && key_keep.numel() > 0) {
    TORCH_CHECK(key_keep.dim() == 2 && key_keep.size(0) == dm.B && key_keep.size(1) == dm.n,
                "rsa: key_keep must be [B, n]");
  }
  return dm;
}

at::Tensor keep_bytes(const at::Tensor& key_keep) {
  if (!key_keep.defined() || key_keep.numel() == 0) return at::Tensor();
  return key_keep.to(at::kByte).contiguous();
}

// ---------------------------------------------------------------------------------------- forward

template <typename T>
void forward_impl(const Dims& dm, const T* q, const T* kt_blocks, const T* v, const int32_t* layout,
                  const uint8_t* keep, T scale, T* out, T* lse) {
  const int64_t B = dm.B, H = dm.H, n = dm.n, d = dm.d, bs = dm.bs, nb = dm.nb, width = dm.width;
  at::parallel_for(0, B * H * nb, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> blocks(width);
    std::vector<T> S(bs * width * bs), bias(width * bs), inv(bs);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t i = task % nb;
      const int64_t bh = task / nb;
      const int64_t b = bh / H, h = bh % H;
      const T* Qi = q + (bh * n + i * bs) * d;
      T* Oi = out + (bh * n + i * bs) * d;
      T* lse_i = lse + bh * n + i * bs;
      const int64_t L = row_blocks(layout + (h * nb + i) * width, width, nb, blocks.data());
      if (L == 0) {
        std::fill(Oi, Oi + bs * d, T(0));
        std::fill(lse_i, lse_i + bs, std::numeric_limits<T>::infinity());
        continue;
      }
      const int64_t cols = L * bs;
      const T* kt_bh = kt_blocks + bh * n * d;
      const T* v_bh = v + bh * n * d;
      for (int64_t l = 0; l < L; ++l) {  // S[:, l block] = Q_i K_j^T
        gemm_nn(bs, bs, d, Qi, d, kt_bh + blocks[l] * d * bs, bs, S.data() + l * bs, cols, false);
      }
      const bool masked = key_bias<T>(keep ? keep + b * n : nullptr, blocks.data(), L, bs, bias.data());
      softmax_rows(S.data(), bs, cols, masked ? bias.data() : static_cast<const T*>(nullptr), scale, lse_i,
                   inv.data());
      for (int64_t l = 0; l < L; ++l) {  // O_i = sum_l P_l V_j
        gemm_nn(bs, d, bs, S.data() + l * bs, cols, v_bh + blocks[l] * bs * d, d, Oi, d, l > 0);
      }
      for (int64_t r = 0; r < bs; ++r) {
        const T s = inv[r];
        for (int64_t c = 0; c < d; ++c) Oi[r * d + c] *= s;
      }
    }
    gemm_release();
  });
}

std::vector<at::Tensor> rsa_forward(at::Tensor q, at::Tensor k, at::Tensor v, at::Tensor layout,
                                    at::Tensor key_keep, int64_t block_size, double scale) {
  const Dims dm = check_inputs(q, k, v, layout, key_keep, block_size);
  if (q.is_cuda()) {
#ifdef RSA_WITH_CUDA
    return rsa_forward_cuda(q, k, v, layout, key_keep, block_size, scale);
#else
    TORCH_CHECK(false, "rsa: this build of the kernel has no CUDA part");
#endif
  }
  q = q.contiguous();
  v = v.contiguous();
  auto layout_i = layout.to(at::kInt).contiguous();
  auto keep = keep_bytes(key_keep);
  // K with every block transposed: [B, H, n_b, d, bs].
  auto kt = k.reshape({dm.B, dm.H, dm.nb, dm.bs, dm.d}).transpose(3, 4).contiguous();
  auto out = at::empty_like(q);
  auto lse = at::empty({dm.B, dm.H, dm.n}, q.options());
  AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "rsa_forward", [&] {
    forward_impl<scalar_t>(dm, q.data_ptr<scalar_t>(), kt.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                           layout_i.data_ptr<int32_t>(), keep.defined() ? keep.data_ptr<uint8_t>() : nullptr,
                           static_cast<scalar_t>(scale), out.data_ptr<scalar_t>(), lse.data_ptr<scalar_t>());
  });
  return {out, lse};
}

// --------------------------------------------------------------------------------------- backward

template <typename T>
void backward_impl(const Dims& dm, const T* dout, const T* q, const T* k, const T* v, const T* out, const T* lse,
                   const int32_t* layout, const uint8_t* keep, T scale, T* dq, T* dk, T* dv) {
  const int64_t B = dm.B, H = dm.H, n = dm.n, d = dm.d, bs = dm.bs, nb = dm.nb, width = dm.width;
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    const int64_t nd = n * d;
    // Per-thread scratch: blockwise-transposed K, V, Q, dO and the dK^T, dV^T accumulators of one (b, h).
    std::vector<T> kt(nd), vt(nd), qt(nd), dot(nd), dkt(nd), dvt(nd);
    std::vector<int64_t> blocks(width);
    std::vector<T> P(bs * width * bs), dS(bs * width * bs), bias(width * bs), D(bs);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const T* q_bh = q + bh * nd;
      const T* k_bh = k + bh * nd;
      const T* v_bh = v + bh * nd;
      const T* o_bh = out + bh * nd;
      const T* do_bh = dout + bh * nd;
      const T* lse_bh = lse + bh * n;
      transpose_blocks(k_bh, kt.data(), nb, bs, d);
      transpose_blocks(v_bh, vt.data(), nb, bs, d);
      transpose_blocks(q_bh, qt.data(), nb, bs, d);
      transpose_blocks(do_bh, dot.data(), nb, bs, d);
      std::fill(dkt.begin(), dkt.end(), T(0));
      std::fill(dvt.begin(), dvt.end(), T(0));
      T* dq_bh = dq + bh * nd;
      for (int64_t i = 0; i < nb; ++i) {
        T* dQi = dq_bh + i * bs * d;
        const int64_t L = row_blocks(layout + (h * nb + i) * width, width, nb, blocks.data());
        if (L == 0) {
          std::fill(dQi, dQi + bs * d, T(0));
          continue;
        }
        const int64_t cols = L * bs;
        const T* Qi = q_bh + i * bs * d;
        const T* dOi = do_bh + i * bs * d;
        const T* Oi = o_bh + i * bs * d;
        for (int64_t l = 0; l < L; ++l) {
          const int64_t j = blocks[l];
          gemm_nn(bs, bs, d, Qi, d, kt.data() + j * d * bs, bs, P.data() + l * bs, cols, false);    // S
          gemm_nn(bs, bs, d, dOi, d, vt.data() + j * d * bs, bs, dS.data() + l * bs, cols, false);  // dP
        }
        const bool masked = key_bias<T>(keep ? keep + b * n : nullptr, blocks.data(), L, bs, bias.data());
        probs_rows(P.data(), bs, cols, masked ? bias.data() : static_cast<const T*>(nullptr), scale,
                   lse_bh + i * bs);
        for (int64_t r = 0; r < bs; ++r) {
          T acc = 0;
          for (int64_t c = 0; c < d; ++c) acc += dOi[r * d + c] * Oi[r * d + c];
          D[r] = acc;
        }
        dscores_rows(dS.data(), P.data(), bs, cols, D.data(), scale);  // dS now holds scale * dS
        const T* QTi = qt.data() + i * d * bs;
        const T* dOTi = dot.data() + i * d * bs;
        for (int64_t l = 0; l < L; ++l) {
          const int64_t j = blocks[l];
          gemm_nn(bs, d, bs, dS.data() + l * bs, cols, k_bh + j * bs * d, d, dQi, d, l > 0);        // dQ_i
          gemm_nn(d, bs, bs, QTi, bs, dS.data() + l * bs, cols, dkt.data() + j * d * bs, bs, true);  // dK_j^T
          gemm_nn(d, bs, bs, dOTi, bs, P.data() + l * bs, cols, dvt.data() + j * d * bs, bs, true);  // dV_j^T
        }
      }
      untranspose_blocks(dkt.data(), dk + bh * nd, nb, bs, d);
      untranspose_blocks(dvt.data(), dv + bh * nd, nb, bs, d);
    }
    gemm_release();
  });
}

std::vector<at::Tensor> rsa_backward(at::Tensor grad_out, at::Tensor q, at::Tensor k, at::Tensor v, at::Tensor out,
                                     at::Tensor lse, at::Tensor layout, at::Tensor key_keep, int64_t block_size,
                                     double scale) {
  const Dims dm = check_inputs(q, k, v, layout, key_keep, block_size);
  TORCH_CHECK(grad_out.sizes() == q.sizes() && out.sizes() == q.sizes(), "rsa: grad_out / out shape mismatch");
  TORCH_CHECK(lse.dim() == 3 && lse.size(0) == dm.B && lse.size(1) == dm.H && lse.size(2) == dm.n,
              "rsa: lse must be [B, H, n]");
  if (q.is_cuda()) {
#ifdef RSA_WITH_CUDA
    return rsa_backward_cuda(grad_out, q, k, v, out, lse, layout, key_keep, block_size, scale);
#else
    TORCH_CHECK(false, "rsa: this build of the kernel has no CUDA part");
#endif
  }
  const auto dtype = q.scalar_type();
  grad_out = grad_out.to(dtype).contiguous();
  q = q.contiguous();
  k = k.contiguous();
  v = v.contiguous();
  out = out.to(dtype).contiguous();
  lse = lse.to(dtype).contiguous();
  auto layout_i = layout.to(at::kInt).contiguous();
  auto keep = keep_bytes(key_keep);
  auto dq = at::empty_like(q);
  auto dk = at::empty_like(k);
  auto dv = at::empty_like(v);
  AT_DISPATCH_FLOATING_TYPES(dtype, "rsa_backward", [&] {
    backward_impl<scalar_t>(dm, grad_out.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), k.data_ptr<scalar_t>(),
                            v.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), lse.data_ptr<scalar_t>(),
                            layout_i.data_ptr<int32_t>(), keep.defined() ? keep.data_ptr<uint8_t>() : nullptr,
                            static_cast<scalar_t>(scale), dq.data_ptr<scalar_t>(), dk.data_ptr<scalar_t>(),
                            dv.data_ptr<scalar_t>());
  });
  return {dq, dk, dv};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Random Sparse Attention (RSA): block-sparse attention kernels for the CPU (and CUDA where built)";
#ifdef RSA_WITH_CUDA
  m.def("has_cuda", [] { return true; }, "whether the CUDA kernels are compiled in");
#else
  m.def("has_cuda", [] { return false; }, "whether the CUDA kernels are compiled in");
#endif
  m.def("rsa_forward", &rsa_forward, "RSA forward -> [out, lse]", pybind11::arg("q"), pybind11::arg("k"),
        pybind11::arg("v"), pybind11::arg("layout"), pybind11::arg("key_keep"), pybind11::arg("block_size"),
        pybind11::arg("scale"));
  m.def("rsa_backward", &rsa_backward, "RSA backward -> [dq, dk, dv]", pybind11::arg("grad_out"),
        pybind11::arg("q"), pybind11::arg("k"), pybind11::arg("v"), pybind11::arg("out"), pybind11::arg("lse"),
        pybind11::arg("layout"), pybind11::arg("key_keep"), pybind11::arg("block_size"), pybind11::arg("scale"));
}
