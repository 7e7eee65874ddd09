// register_module with a type that is not a module names what the type must be.
// expect: register_module: the submodule type must derive from nn::Module
#include <memory>
#include <metalearn/nn/module.hpp>

namespace nn = metalearn::nn;

struct NotAModule {};

class Holder : public nn::Cloneable<Holder, float> {
 public:
  Holder() { (void)register_module("part", std::make_shared<NotAModule>()); }
  metalearn::Tensor<float> forward(const metalearn::Tensor<float>& x,
                                   const nn::ParamDict<float>&) const override {
    return x;
  }
};

int main() {
  Holder h;
}
