// Non-template bookkeeping of nn::Module: name checks and printing helpers, and the
// explicit instantiations for float and double.
// SPDX-License-Identifier: MIT

#include "metalearn/nn/module.hpp"

#include <cctype>

namespace metalearn::nn {

namespace detail {

void check_local_name(std::string_view name, const char* function, const char* what) {
  METALEARN_CHECK(!name.empty(), ValueError, function, ": empty ", what, " name");
  METALEARN_CHECK(name.find('.') == std::string_view::npos, ValueError, function, ": ", what,
                  " name '", name, "' must not contain '.' (dots separate submodule names)");
  for (char c : name) {
    METALEARN_CHECK(std::isgraph(static_cast<unsigned char>(c)), ValueError, function, ": ", what,
                    " name '", name, "' contains whitespace or a control character");
  }
}

std::string indent_lines(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  return out;
}

}  // namespace detail

template class Module<float>;
template class Module<double>;

}  // namespace metalearn::nn
