#pragma once
/// @file
/// The GEMM behind the convolutions: for products whose b is not transposed, up to a
/// size, our own kernel (chosen per CPU at run time), which sums every element in one
/// order; otherwise
/// single-threaded OpenBLAS in the default build (METALEARN_USE_OPENBLAS), Eigen's
/// GEMM without it. Compiled into the library, so only the library links the BLAS.

#include <string_view>

#include "metalearn/core/export.hpp"
#include "metalearn/core/shape.hpp"

namespace metalearn {

/// Which library computes the convolution GEMMs that the order-keeping float kernel
/// does not take (products with a transposed b, such as weight gradients, and larger
/// products):
/// "openblas (sequential)" in the default build, "openblas (threaded)" when the
/// program loaded a threaded OpenBLAS in its place, or "eigen" (configured with
/// -DMETALEARN_USE_OPENBLAS=OFF).
[[nodiscard]] METALEARN_API std::string_view gemm_backend() noexcept;

namespace detail {

/// c = op(a) * op(b) with row-major operands: op(a) is [m, k], op(b) is [k, n], c is
/// [m, n]; op(x) = x^T when the flag is set, and lda / ldb / ldc are the row strides
/// of a, b and c as stored. c is overwritten (never read). Which kernel runs, and so
/// the result, depends on the shapes only, never on the calling thread: concurrent
/// calls on the intra-op pool give the bits of a serial run. Products whose b is not
/// transposed, with op(a) of at most 192 KiB and an inner dimension of at most 1024 (a
/// convolution of up to 64 channels with a 3x3 kernel and its col2im input gradient),
/// on every target sum every element of c in the same order whatever its position, so equal columns
/// of b give bit-equal columns of c: such a convolution gives equal outputs for windows with equal
/// contents.
METALEARN_API void gemm(bool trans_a, bool trans_b, Index m, Index n, Index k, const float* a,
                        Index lda, const float* b, Index ldb, float* c, Index ldc);
METALEARN_API void gemm(bool trans_a, bool trans_b, Index m, Index n, Index k, const double* a,
                        Index lda, const double* b, Index ldb, double* c, Index ldc);

/// out[i] = op(A[i]) * op(B[i]) for i in [0, batch), every operand contiguous and
/// row-major: A[i] is [a_rows, a_cols] at a + i * a_stride, B[i] likewise, out[i] is
/// [m, n] at out + i * m * n; a stride of 0 shares that operand across the batch. The
/// products of matmul and bmm. Products small enough for the order-keeping kernel (an
/// inner dimension of at most 1024 and op(a) of at most 192 KiB, with b transposed or
/// not) run in it, on the instruction set chosen at run time; larger ones as gemm().
METALEARN_API void gemm_batched(const float* a, Index a_rows, Index a_cols, Index a_stride, bool ta,
                                const float* b, Index b_rows, Index b_cols, Index b_stride, bool tb,
                                float* out, Index batch);
METALEARN_API void gemm_batched(const double* a, Index a_rows, Index a_cols, Index a_stride,
                                bool ta, const double* b, Index b_rows, Index b_cols,
                                Index b_stride, bool tb, double* out, Index batch);

}  // namespace detail
}  // namespace metalearn
