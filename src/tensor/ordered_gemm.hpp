#pragma once
// The order-keeping GEMM kernel, one per instruction set (src/tensor/ordered_gemm.cpp).

#include <cstddef>

#include "metalearn/core/shape.hpp"

namespace metalearn::detail {

/// c = op(a) * op(b) (row-major, c overwritten) in tiles of 6 rows by two vectors of
/// columns held in registers. Every element of c is one chain of multiply-adds over k
/// in order, starting from zero, the same instructions whatever its row or column
/// (columns past the end of a panel are computed on zeros and not stored), so equal
/// columns of op(b) give bit-equal columns of c. The multiply-adds are fused on targets
/// with FMA (AVX2, AVX-512, NEON) and not on SSE4 or the portable C++ target, so the
/// last bits differ between those two groups of targets.
/// The products: `batch` of them, the i-th reading a + i * stride_a and b + i * stride_b
/// and writing c + i * stride_c (a stride of 0 shares an operand across the batch).
struct OrderedGemm {
  bool trans_a = false, trans_b = false;
  Index m = 0, n = 0, k = 0;
  Index lda = 0, ldb = 0, ldc = 0;
  Index batch = 1, stride_a = 0, stride_b = 0, stride_c = 0;
};

/// c = op(a) * op(b) for each product of `p`.
void ordered_gemm(const OrderedGemm& p, const float* a, const float* b, float* c);
void ordered_gemm(const OrderedGemm& p, const double* a, const double* b, double* c);

/// Whether the ordered kernel takes a product of this shape: op(a) of at most 192 KiB
/// (so that the packed a stays in L2 while the panels of b stream past it) and an inner
/// dimension of at most 1024 (a panel of b within 64 KiB of floats). Larger products
/// ran at 0.78-1.0x OpenBLAS in it ([128, 576] x [576, 4096] 0.78x, [256, 1152] x
/// [1152, 2048] 0.88x, 512 x 512 x 512 1.0x; mean of repeated calls, one AVX2 core).
/// The choice depends on the shape only.
inline bool ordered_gemm_takes(Index m, Index k, std::size_t element_size) {
  return k <= 1024 && m * k * static_cast<Index>(element_size) <= (Index{192} << 10);
}

}  // namespace metalearn::detail
