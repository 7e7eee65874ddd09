// A module that cannot be copied cannot be cloned: the message says how to hold
// submodules instead.
// expect: Derived must be copy-constructible
#include <memory>
#include <metalearn/nn/module.hpp>

namespace nn = metalearn::nn;

class Owner : public nn::Cloneable<Owner, float> {
 public:
  metalearn::Tensor<float> forward(const metalearn::Tensor<float>& x,
                                   const nn::ParamDict<float>&) const override {
    return x;
  }

 private:
  std::unique_ptr<int> state_ = std::make_unique<int>(0);
};

int main() {
  Owner o;
  (void)o.clone();
}
