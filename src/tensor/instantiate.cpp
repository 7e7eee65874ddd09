// Explicit instantiations of every op for float and double: proves that each
// template compiles for both scalar types and gives users prebuilt symbols.

#include "metalearn/tensor.hpp"

namespace metalearn {

#define METALEARN_INSTANTIATE_OPS(T)                                                      \
  template Tensor<T> add(const Tensor<T>&, const Tensor<T>&);                             \
  template Tensor<T> sub(const Tensor<T>&, const Tensor<T>&);                             \
  template Tensor<T> mul(const Tensor<T>&, const Tensor<T>&);                             \
  template Tensor<T> div(const Tensor<T>&, const Tensor<T>&);                             \
  template Tensor<T> add_scalar(const Tensor<T>&, T);                                     \
  template Tensor<T> mul_scalar(const Tensor<T>&, T);                                     \
  template Tensor<T> neg(const Tensor<T>&);                                               \
  template Tensor<T> reciprocal(const Tensor<T>&);                                        \
  template Tensor<T> pow(const Tensor<T>&, T);                                            \
  template Tensor<T> square(const Tensor<T>&);                                            \
  template Tensor<T> sqrt(const Tensor<T>&);                                              \
  template Tensor<T> exp(const Tensor<T>&);                                               \
  template Tensor<T> log(const Tensor<T>&);                                               \
  template Tensor<T> abs(const Tensor<T>&);                                               \
  template Tensor<T> relu(const Tensor<T>&);                                              \
  template Tensor<T> leaky_relu(const Tensor<T>&, T);                                     \
  template Tensor<T> sigmoid(const Tensor<T>&);                                           \
  template Tensor<T> tanh(const Tensor<T>&);                                              \
  template Tensor<T> softplus(const Tensor<T>&);                                          \
  template Tensor<T> clamp(const Tensor<T>&, T, T);                                       \
  template Tensor<T> sum(const Tensor<T>&);                                               \
  template Tensor<T> sum(const Tensor<T>&, Index, bool);                                  \
  template Tensor<T> sum(const Tensor<T>&, std::vector<Index>, bool);                     \
  template Tensor<T> mean(const Tensor<T>&);                                              \
  template Tensor<T> mean(const Tensor<T>&, Index, bool);                                 \
  template Tensor<T> mean(const Tensor<T>&, const std::vector<Index>&, bool);             \
  template Tensor<T> max(const Tensor<T>&);                                               \
  template Tensor<T> max(const Tensor<T>&, Index, bool);                                  \
  template Tensor<T> logsumexp(const Tensor<T>&);                                         \
  template Tensor<T> logsumexp(const Tensor<T>&, Index, bool);                            \
  template Tensor<T> softmax(const Tensor<T>&, Index);                                    \
  template Tensor<T> log_softmax(const Tensor<T>&, Index);                                \
  template Tensor<T> mm(const Tensor<T>&, const Tensor<T>&, bool, bool);                  \
  template Tensor<T> matmul(const Tensor<T>&, const Tensor<T>&);                          \
  template Tensor<T> bmm(const Tensor<T>&, const Tensor<T>&);                             \
  template Tensor<T> reshape(const Tensor<T>&, std::vector<Index>);                       \
  template Tensor<T> permute(const Tensor<T>&, const std::vector<Index>&);                \
  template Tensor<T> transpose(const Tensor<T>&, Index, Index);                           \
  template Tensor<T> expand(const Tensor<T>&, const Shape&);                              \
  template Tensor<T> sum_to(const Tensor<T>&, const Shape&);                              \
  template Tensor<T> slice(const Tensor<T>&, Index, Index, Index, Index);                 \
  template Tensor<T> concat(const std::vector<Tensor<T>>&, Index);                        \
  template Tensor<T> stack(const std::vector<Tensor<T>>&, Index);                         \
  template Tensor<T> index_select(const Tensor<T>&, Index, const std::vector<Index>&);    \
  template Tensor<T> gather(const Tensor<T>&, Index, const std::vector<Index>&,           \
                            const Shape&);                                                \
  template Tensor<T> mse_loss(const Tensor<T>&, const Tensor<T>&);                        \
  template Tensor<T> cross_entropy(const Tensor<T>&, const std::vector<Index>&);          \
  template Tensor<T> gaussian_nll_loss(const Tensor<T>&, const Tensor<T>&,                \
                                       const Tensor<T>&, bool, T);                        \
  template Tensor<T> pairwise_sq_dist(const Tensor<T>&, const Tensor<T>&);                \
  template Tensor<T> cosine_similarity(const Tensor<T>&, const Tensor<T>&, T);            \
  template Tensor<T> conv2d(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, Index,  \
                            Index);                                                       \
  template Tensor<T> max_pool2d(const Tensor<T>&, Index, Index);

METALEARN_INSTANTIATE_OPS(float)
METALEARN_INSTANTIATE_OPS(double)

#undef METALEARN_INSTANTIATE_OPS

}  // namespace metalearn
