// Shape::dims() is a view: taking it from a temporary Shape does not compile.
// expect: deleted
#include <metalearn/core/shape.hpp>

int main() {
  const auto view = metalearn::Shape{2, 3}.dims();
  return static_cast<int>(view.size());
}
