// Explicit instantiations of every op for float and double: proves that each
// template compiles for both scalar types and gives users prebuilt symbols.

#include "metalearn/tensor.hpp"

namespace metalearn {

#define METALEARN_INSTANTIATE_OPS(T)                                                            \
  template METALEARN_API Tensor<T> add(const Tensor<T>&, const Tensor<T>&);                     \
  template METALEARN_API Tensor<T> sub(const Tensor<T>&, const Tensor<T>&);                     \
  template METALEARN_API Tensor<T> mul(const Tensor<T>&, const Tensor<T>&);                     \
  template METALEARN_API Tensor<T> div(const Tensor<T>&, const Tensor<T>&);                     \
  template METALEARN_API Tensor<T> add_scalar(const Tensor<T>&, T);                             \
  template METALEARN_API Tensor<T> mul_scalar(const Tensor<T>&, T);                             \
  template METALEARN_API Tensor<T> neg(const Tensor<T>&);                                       \
  template METALEARN_API Tensor<T> reciprocal(const Tensor<T>&);                                \
  template METALEARN_API Tensor<T> pow(const Tensor<T>&, T);                                    \
  template METALEARN_API Tensor<T> square(const Tensor<T>&);                                    \
  template METALEARN_API Tensor<T> sqrt(const Tensor<T>&);                                      \
  template METALEARN_API Tensor<T> exp(const Tensor<T>&);                                       \
  template METALEARN_API Tensor<T> log(const Tensor<T>&);                                       \
  template METALEARN_API Tensor<T> abs(const Tensor<T>&);                                       \
  template METALEARN_API Tensor<T> relu(const Tensor<T>&);                                      \
  template METALEARN_API Tensor<T> leaky_relu(const Tensor<T>&, T);                             \
  template METALEARN_API Tensor<T> sigmoid(const Tensor<T>&);                                   \
  template METALEARN_API Tensor<T> tanh(const Tensor<T>&);                                      \
  template METALEARN_API Tensor<T> softplus(const Tensor<T>&);                                  \
  template METALEARN_API Tensor<T> clamp(const Tensor<T>&, T, T);                               \
  template METALEARN_API Tensor<T> sum(const Tensor<T>&);                                       \
  template METALEARN_API Tensor<T> sum(const Tensor<T>&, Index, bool);                          \
  template METALEARN_API Tensor<T> sum(const Tensor<T>&, std::vector<Index>, bool);             \
  template METALEARN_API Tensor<T> mean(const Tensor<T>&);                                      \
  template METALEARN_API Tensor<T> mean(const Tensor<T>&, Index, bool);                         \
  template METALEARN_API Tensor<T> mean(const Tensor<T>&, const std::vector<Index>&, bool);     \
  template METALEARN_API Tensor<T> max(const Tensor<T>&);                                       \
  template METALEARN_API Tensor<T> max(const Tensor<T>&, Index, bool);                          \
  template METALEARN_API Tensor<T> logsumexp(const Tensor<T>&);                                 \
  template METALEARN_API Tensor<T> logsumexp(const Tensor<T>&, Index, bool);                    \
  template METALEARN_API Tensor<T> softmax(const Tensor<T>&, Index);                            \
  template METALEARN_API Tensor<T> log_softmax(const Tensor<T>&, Index);                        \
  template METALEARN_API Tensor<T> mm(const Tensor<T>&, const Tensor<T>&, bool, bool);          \
  template METALEARN_API Tensor<T> matmul(const Tensor<T>&, const Tensor<T>&);                  \
  template METALEARN_API Tensor<T> bmm(const Tensor<T>&, const Tensor<T>&);                     \
  template METALEARN_API Tensor<T> reshape(const Tensor<T>&, std::vector<Index>);               \
  template METALEARN_API Tensor<T> permute(const Tensor<T>&, const std::vector<Index>&);        \
  template METALEARN_API Tensor<T> transpose(const Tensor<T>&, Index, Index);                   \
  template METALEARN_API Tensor<T> expand(const Tensor<T>&, const Shape&);                      \
  template METALEARN_API Tensor<T> sum_to(const Tensor<T>&, const Shape&);                      \
  template METALEARN_API Tensor<T> slice(const Tensor<T>&, Index, Index, Index, Index);         \
  template METALEARN_API Tensor<T> concat(const std::vector<Tensor<T>>&, Index);                \
  template METALEARN_API Tensor<T> stack(const std::vector<Tensor<T>>&, Index);                 \
  template METALEARN_API Tensor<T> index_select(const Tensor<T>&, Index,                        \
                                                const std::vector<Index>&);                     \
  template METALEARN_API Tensor<T> gather(const Tensor<T>&, Index, const std::vector<Index>&,   \
                                          const Shape&);                                        \
  template METALEARN_API Tensor<T> mse_loss(const Tensor<T>&, const Tensor<T>&);                \
  template METALEARN_API Tensor<T> cross_entropy(const Tensor<T>&, const Labels&);              \
  template METALEARN_API Tensor<T> gaussian_nll_loss(const Tensor<T>&, const Tensor<T>&,        \
                                                     const Tensor<T>&, bool, T);                \
  template METALEARN_API Tensor<T> pairwise_sq_dist(const Tensor<T>&, const Tensor<T>&);        \
  template METALEARN_API Tensor<T> cosine_similarity(const Tensor<T>&, const Tensor<T>&, T);    \
  template METALEARN_API Tensor<T> conv2d(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, \
                                          Index, Index);                                        \
  template METALEARN_API Tensor<T> max_pool2d(const Tensor<T>&, Index, Index);

METALEARN_INSTANTIATE_OPS(float)
METALEARN_INSTANTIATE_OPS(double)

#undef METALEARN_INSTANTIATE_OPS

}  // namespace metalearn
