// Explicit instantiations of the optimizers for float and double.
// SPDX-License-Identifier: MIT

#include "metalearn/optim.hpp"

namespace metalearn::optim {

template class SGD<float>;
template class SGD<double>;
template class Adam<float>;
template class Adam<double>;
template class AdamW<float>;
template class AdamW<double>;

}  // namespace metalearn::optim
