// conv2d and max_pool2d: values over float and double, gradients in double.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <utility>
#include <vector>

#include "metalearn/autograd.hpp"
#include "metalearn/core/simd.hpp"
#include "metalearn/tensor.hpp"
#include "support/gradients.hpp"
#include "support/intra_op.hpp"
#include "support/tensor_assertions.hpp"
#include "support/typed_scalars.hpp"

namespace ml = metalearn;
namespace mt = metalearn::testing;
using TD = ml::Tensor<double>;
using Args = std::vector<TD>;
using V = std::vector<ml::Index>;

template <class T>
class Conv : public ::testing::Test {
 protected:
  // x = 1..9 as a 3x3 image; w = [[1, 0], [0, -1]] computes x[i, j] - x[i+1, j+1].
  ml::Tensor<T> x = ml::reshape(ml::arange<T>(T(1), T(10)), V{1, 1, 3, 3});
  ml::Tensor<T> w = mt::make<T>({1, 1, 2, 2}, {1, 0, 0, -1});
};
TYPED_TEST_SUITE(Conv, mt::RealTypes, mt::RealTypeNames);

TYPED_TEST(Conv, Basic) {
  using T = TypeParam;
  EXPECT_TRUE(mt::values_near(ml::conv2d(this->x, this->w), {1, 1, 2, 2}, {-4, -4, -4, -4}));
  auto bias = mt::make<T>({1}, {0.5});
  EXPECT_TRUE(
      mt::values_near(ml::conv2d(this->x, this->w, bias), {1, 1, 2, 2}, {-3.5, -3.5, -3.5, -3.5}));
}

TYPED_TEST(Conv, StrideAndPadding) {
  using T = TypeParam;
  EXPECT_TRUE(mt::values_near(ml::conv2d(this->x, this->w, ml::Tensor<T>(), 2, 1), {1, 1, 2, 2},
                              {-1, -3, -7, -4}));
  // Padding 1, stride 1: a 4x4 output.
  EXPECT_TRUE(mt::values_near(ml::conv2d(this->x, this->w, ml::Tensor<T>(), 1, 1), {1, 1, 4, 4},
                              {-1, -2, -3, 0, -4, -4, -4, 3, -7, -4, -4, 6, 0, 7, 8, 9}));
}

TYPED_TEST(Conv, ChannelsAndBatch) {
  using T = TypeParam;
  // Two images; channel 0 = 1..9 (second image: doubled), channel 1 = ones.
  auto c0 = ml::reshape(ml::arange<T>(T(1), T(10)), V{1, 1, 3, 3});
  auto c1 = ml::ones<T>({1, 1, 3, 3});
  auto img0 = ml::concat<T>({c0, c1}, 1);
  auto img1 = ml::concat<T>({ml::mul_scalar(c0, T(2)), c1}, 1);
  auto x = ml::concat<T>({img0, img1}, 0);  // [2, 2, 3, 3]
  // 1x1 kernels: out0 = x0 + 2 x1, out1 = -x0.
  auto w = mt::make<T>({2, 2, 1, 1}, {1, 2, -1, 0});
  auto bias = mt::make<T>({2}, {0, 10});
  auto y = ml::conv2d(x, w, bias, 2, 0);  // stride 2 picks corners
  EXPECT_TRUE(mt::values_near(y, {2, 2, 2, 2},
                              {3, 5, 9, 11, 9, 7, 3, 1,  //
                               4, 8, 16, 20, 8, 4, -4, -8}));
}

TYPED_TEST(Conv, WeightGradient) {
  auto w = this->w.detach().clone().requires_grad(true);
  auto g = ml::autograd::grad({ml::sum(ml::conv2d(this->x, w))}, {w})[0];
  // Each weight sees the sum of the 2x2 window positions it covers.
  EXPECT_TRUE(mt::values_near(g, {1, 1, 2, 2}, {12, 16, 24, 28}));
}

TYPED_TEST(Conv, MaxPool) {
  using T = TypeParam;
  auto x = ml::reshape(ml::arange<T>(T(0), T(16)), V{1, 1, 4, 4});
  EXPECT_TRUE(mt::values_near(ml::max_pool2d(x, 2), {1, 1, 2, 2}, {5, 7, 13, 15}));
  EXPECT_TRUE(mt::values_near(ml::max_pool2d(this->x, 2, 1), {1, 1, 2, 2}, {5, 6, 8, 9}));
  auto y = mt::make<T>({1, 1, 2, 4}, {1, 9, -1, -2, 3, 4, -3, -5});
  EXPECT_TRUE(mt::values_near(ml::max_pool2d(y, 2), {1, 1, 1, 2}, {9, -1}));
  auto yv = y.detach().clone().requires_grad(true);
  auto g = ml::autograd::grad({ml::sum(ml::max_pool2d(yv, 2))}, {yv})[0];
  EXPECT_TRUE(mt::values_near(g, {1, 1, 2, 4}, {0, 1, 1, 0, 0, 0, 0, 0}));
  EXPECT_THROW(ml::max_pool2d(ml::zeros<T>({1, 1, 1, 1}), 2), ml::ShapeError);
  EXPECT_THROW(ml::max_pool2d(ml::zeros<T>({1, 4, 4}), 2), ml::ShapeError);
}

// The 2x2 stride-2 pool over float planes of every width from 2 to 37 (eight and four
// windows at a time on SIMD targets, overlapping groups at the row's end):
// the maximum and the element the gradient goes to are those of the scalar rule, the
// first strictly greater element in window order, with ties, infinities and NaNs.
// Every window has its own output gradient, so the backward (eight windows at a time
// too) must put each at its own window's element.
TEST(MaxPool, TwoByTwoMatchesTheFirstMaximumOfEveryWindow) {
  ml::Generator gen(5);
  for (ml::Index w = 2; w <= 37; ++w) {
    const ml::Index h = 2 + w % 5, n = 2, c = 3;
    std::vector<float> v(static_cast<std::size_t>(n * c * h * w));
    const ml::Tensor<float> r = ml::uniform<float>({n * c * h * w}, gen, 0.0F, 1.0F);
    for (std::size_t i = 0; i < v.size(); ++i) {
      const float u = r.data()[i];
      // Few distinct values, so that most windows hold ties.
      v[i] = u < 0.02F   ? std::numeric_limits<float>::quiet_NaN()
             : u < 0.04F ? std::numeric_limits<float>::infinity()
             : u < 0.06F ? -std::numeric_limits<float>::infinity()
                         : std::floor(u * 4.0F);
    }
    const auto x = ml::from_vector<float>(v, {n, c, h, w}).requires_grad(true);
    const auto y = ml::max_pool2d(x, 2);
    const ml::Index oh = h / 2, ow = w / 2;
    ASSERT_EQ(y.shape(), (ml::Shape{n, c, oh, ow}));
    const auto gy = ml::uniform<float>({n, c, oh, ow}, gen, 1.0F, 2.0F);
    const auto g = ml::autograd::grad({ml::sum(ml::mul(y, gy))}, {x})[0];
    std::vector<float> expected_grad(v.size(), 0.0F);
    for (ml::Index p = 0; p < n * c; ++p) {
      for (ml::Index i = 0; i < oh; ++i) {
        for (ml::Index j = 0; j < ow; ++j) {
          ml::Index best = p * h * w + 2 * i * w + 2 * j;
          for (const ml::Index at : {best, best + 1, best + w, best + w + 1}) {
            if (v[static_cast<std::size_t>(at)] > v[static_cast<std::size_t>(best)]) best = at;
          }
          const float got = y.data()[(p * oh + i) * ow + j];
          const float want = v[static_cast<std::size_t>(best)];
          if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got)) << "w " << w << " window " << p << "," << i << "," << j;
          } else {
            EXPECT_EQ(got, want) << "w " << w << " window " << p << "," << i << "," << j;
          }
          expected_grad[static_cast<std::size_t>(best)] = gy.data()[(p * oh + i) * ow + j];
        }
      }
    }
    EXPECT_EQ(std::vector<float>(g.data(), g.data() + g.numel()), expected_grad) << "w " << w;
  }
}

// Float convolutions give bit-equal outputs for windows with equal contents, in any
// image of the batch and at any position (the blank areas of an image stay exactly
// flat, so max-pool ties between them stay ties). Images of 14x14 with 8 channels over
// a constant background, a few random patches, and batches that the convolution cuts
// into several chunks.
TEST(ConvFloat, EqualWindowsGiveBitEqualOutputs) {
  ml::Generator gen(9);
  const ml::Index c = 8, h = 14, w = 14, o = 16;
  for (const ml::Index n : {1, 5, 40}) {
    std::vector<float> v(static_cast<std::size_t>(n * c * h * w), 0.75F);
    const ml::Tensor<float> noise = ml::uniform<float>({n * c * h * w}, gen, -1.0F, 1.0F);
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::size_t q = i % static_cast<std::size_t>(h * w);
      if (q % 37 < 6) v[i] = noise.data()[i];  // a few patches per plane
    }
    const auto x = ml::from_vector<float>(v, {n, c, h, w});
    const auto weight = ml::uniform<float>({o, c, 3, 3}, gen, -1.0F, 1.0F);
    const auto bias = ml::uniform<float>({o}, gen, -1.0F, 1.0F);
    const auto y = ml::conv2d(x, weight, bias, 1, 1);
    // Window contents (channels x 3 x 3, zero outside) -> the first output seen.
    std::map<std::vector<float>, std::pair<ml::Index, ml::Index>> first;
    int compared = 0, unequal = 0;
    for (ml::Index b = 0; b < n; ++b) {
      for (ml::Index i = 0; i < h; ++i) {
        for (ml::Index j = 0; j < w; ++j) {
          std::vector<float> key;
          for (ml::Index ch = 0; ch < c; ++ch) {
            for (ml::Index di = -1; di <= 1; ++di) {
              for (ml::Index dj = -1; dj <= 1; ++dj) {
                const bool inside = i + di >= 0 && i + di < h && j + dj >= 0 && j + dj < w;
                key.push_back(
                    inside ? v[static_cast<std::size_t>(((b * c + ch) * h + i + di) * w + j + dj)]
                           : 0.0F);
              }
            }
          }
          const auto [it, fresh] = first.emplace(key, std::pair{b, i * w + j});
          if (fresh) continue;
          const auto [b0, q0] = it->second;
          for (ml::Index oc = 0; oc < o; ++oc) {
            ++compared;
            if (y.data()[(b * o + oc) * h * w + i * w + j] !=
                y.data()[(b0 * o + oc) * h * w + q0]) {
              ++unequal;
            }
          }
        }
      }
    }
    EXPECT_GT(compared, 0) << "n " << n;
    EXPECT_EQ(unequal, 0) << "n " << n << ": " << unequal << " of " << compared << " on "
                          << ml::simd_target();
  }
}

TYPED_TEST(Conv, ShapeErrors) {
  using T = TypeParam;
  try {
    (void)ml::conv2d(ml::zeros<T>({1, 3, 5, 5}), ml::zeros<T>({4, 2, 3, 3}));
    FAIL() << "nothing thrown";
  } catch (const ml::ShapeError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("conv2d", 0), 0u) << msg;
    EXPECT_NE(msg.find("[1, 3, 5, 5]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[4, 2, 3, 3]"), std::string::npos) << msg;
  }
  EXPECT_THROW(ml::conv2d(ml::zeros<T>({1, 1, 2, 2}), ml::zeros<T>({1, 1, 3, 3})), ml::ShapeError);
  EXPECT_THROW(
      ml::conv2d(ml::zeros<T>({1, 1, 3, 3}), ml::zeros<T>({2, 1, 2, 2}), ml::zeros<T>({3})),
      ml::ShapeError);
  EXPECT_THROW(
      ml::conv2d(ml::zeros<T>({1, 1, 3, 3}), ml::zeros<T>({1, 1, 2, 2}), ml::Tensor<T>(), 0),
      ml::ValueError);
}

// ---- gradient checks (double) --------------------------------------------------

TEST(ConvGradcheck, Conv2dStridePaddingBias) {
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::conv2d(v[0], v[1], v[2], 2, 1); },
                                  {{2, 2, 5, 5}, {3, 2, 3, 3}, {3}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::conv2d(v[0], v[1]); },
                                  {{1, 2, 4, 3}, {2, 2, 2, 2}}));
  // Curvature through the convolution (square of the output).
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) { return ml::square(ml::conv2d(v[0], v[1], v[2], 1, 1)); },
      {{1, 1, 3, 3}, {2, 1, 2, 2}, {2}}));
}

TEST(ConvGradcheck, MaxPool2d) {
  EXPECT_TRUE(
      mt::check_gradients([](const Args& v) { return ml::max_pool2d(v[0], 2); }, {{2, 2, 4, 4}}));
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::max_pool2d(v[0], 2, 1); },
                                  {{1, 2, 3, 3}}));
  EXPECT_TRUE(mt::check_gradients(
      [](const Args& v) { return ml::max_pool2d(ml::square(v[0]), 3, 2); }, {{1, 1, 5, 5}}));
  // A stride wider than the window leaves elements no window reads: their gradient is 0.
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::max_pool2d(v[0], 2, 3); },
                                  {{1, 2, 7, 8}}));
  // Windows of more than 16 x 16 record their choices in wider codes than a byte;
  // at stride 1 they overlap, so elements chosen by several windows collect every
  // window's gradient.
  EXPECT_TRUE(mt::check_gradients([](const Args& v) { return ml::max_pool2d(v[0], 17, 1); },
                                  {{1, 2, 18, 19}}));
}

// A batch large enough to be split into several im2col chunks gives the same
// values, gradients and second derivatives as one image at a time.
TEST(ConvGradcheck, ChunkedBatchesMatchImageByImage) {
  ml::Generator gen(21);
  const ml::Index n = 90;  // [8, 12, 12] images, 3x3 kernels: ~36 images per chunk in double
  auto x = ml::randn<double>({n, 8, 12, 12}, gen).requires_grad(true);
  auto w = ml::randn<double>({4, 8, 3, 3}, gen).requires_grad(true);
  auto b = ml::randn<double>({4}, gen).requires_grad(true);
  auto loss = [&](const TD& xs) { return ml::sum(ml::square(ml::conv2d(xs, w, b, 1, 1))); };

  auto batch_grads = ml::autograd::grad({loss(x)}, {x, w, b}, {.create_graph = true});
  // A second-order quantity: d/dw of sum(dL/dx), through conv2d_input_grad.
  auto batch_gg = ml::autograd::grad({ml::sum(batch_grads[0])}, {w})[0];

  TD gw_sum = ml::zeros<double>({4, 8, 3, 3});
  TD gg_sum = ml::zeros<double>({4, 8, 3, 3});
  for (ml::Index i = 0; i < n; ++i) {
    auto xi = ml::narrow(x.detach(), 0, i, 1).requires_grad(true);
    auto g = ml::autograd::grad({loss(xi)}, {xi, w}, {.create_graph = true});
    auto gg = ml::autograd::grad({ml::sum(g[0])}, {w})[0];
    gw_sum = ml::add(gw_sum, g[1].detach());
    gg_sum = ml::add(gg_sum, gg.detach());
    auto batch_gx_i = ml::narrow(batch_grads[0].detach(), 0, i, 1);
    ASSERT_TRUE(mt::values_near(batch_gx_i, g[0].shape(), g[0].to_vector(), 1e-10))
        << "image " << i;
  }
  EXPECT_TRUE(mt::values_near(batch_grads[1].detach(), {4, 8, 3, 3}, gw_sum.to_vector(), 1e-9));
  EXPECT_TRUE(mt::values_near(batch_gg, {4, 8, 3, 3}, gg_sum.to_vector(), 1e-9));
}

// With an intra-op pool the image chunks of the convolution and of both its
// gradients run on several threads; values, gradients and a second derivative must
// be those of one thread bit for bit (chunks cut and reduced the same way).
TEST(ConvGradcheck, IntraOpPoolGivesTheBitsOfOneThread) {
  ml::Generator gen(29);
  const ml::Index n = 90;  // ~36 images per chunk in double: several chunks per call
  const auto x0 = ml::randn<double>({n, 8, 12, 12}, gen);
  const auto w = ml::randn<double>({4, 8, 3, 3}, gen).requires_grad(true);
  const auto b = ml::randn<double>({4}, gen).requires_grad(true);
  for (const ml::Index stride : {1, 2}) {
    SCOPED_TRACE(::testing::Message() << "stride " << stride);
    mt::expect_intra_op_pool_bits<double>([&](mt::ValueRecord<double>& record) {
      auto x = x0.clone().requires_grad(true);
      auto y = ml::conv2d(x, w, b, stride, 1);
      auto g = ml::autograd::grad({ml::sum(ml::square(y))}, {x, w, b}, {.create_graph = true});
      record(y);
      for (const auto& t : g) record(t);
      record(ml::autograd::grad({ml::sum(g[0])}, {w})[0]);
    });
  }
}

// Direct evaluation of the convolution sum, for every geometry the convolution
// paths distinguish (stride 1 with the output as wide as the input, other stride-1
// shapes, strided windows with and without a zero border, paddings as wide as the
// kernel or wider, non-square kernels and images), and the input gradients they
// take (as a convolution with the flipped kernel at stride 1 when the padding is
// narrower than a square kernel, through col2im otherwise).
TEST(ConvGradcheck, MatchesTheDirectSumForManyGeometries) {
  struct Case {
    ml::Index c, h, w, o, kh, kw, stride, pad;
  };
  const std::vector<Case> cases{
      {1, 5, 5, 2, 3, 3, 1, 1}, {2, 4, 6, 3, 3, 3, 1, 1}, {3, 7, 5, 2, 2, 3, 2, 1},
      {1, 6, 6, 1, 1, 1, 1, 0}, {2, 5, 4, 2, 3, 2, 1, 2}, {2, 6, 7, 2, 5, 5, 1, 2},
      {1, 9, 9, 2, 3, 3, 3, 0}, {2, 3, 3, 1, 3, 3, 1, 0}, {2, 8, 8, 3, 3, 3, 2, 1},
      {1, 4, 4, 2, 3, 3, 2, 1}, {2, 6, 5, 2, 3, 3, 2, 2}, {1, 7, 7, 1, 2, 2, 2, 0},
      {2, 4, 5, 2, 2, 2, 1, 2}, {3, 6, 6, 2, 3, 3, 1, 0}, {2, 1, 1, 2, 3, 3, 1, 1},
      {1, 2, 3, 2, 5, 5, 1, 2}, {2, 3, 1, 1, 3, 3, 1, 1}};
  ml::Generator gen(23);
  for (const auto& k : cases) {
    auto x = ml::randn<double>({2, k.c, k.h, k.w}, gen);
    auto w = ml::randn<double>({k.o, k.c, k.kh, k.kw}, gen);
    auto y = ml::conv2d(x, w, TD(), k.stride, k.pad);
    const ml::Index oh = (k.h + 2 * k.pad - k.kh) / k.stride + 1;
    const ml::Index ow = (k.w + 2 * k.pad - k.kw) / k.stride + 1;
    std::vector<double> expected;
    for (ml::Index n = 0; n < 2; ++n) {
      for (ml::Index o = 0; o < k.o; ++o) {
        for (ml::Index r = 0; r < oh; ++r) {
          for (ml::Index q = 0; q < ow; ++q) {
            double acc = 0.0;
            for (ml::Index c = 0; c < k.c; ++c) {
              for (ml::Index i = 0; i < k.kh; ++i) {
                for (ml::Index j = 0; j < k.kw; ++j) {
                  const ml::Index yy = r * k.stride - k.pad + i, xx = q * k.stride - k.pad + j;
                  if (yy < 0 || yy >= k.h || xx < 0 || xx >= k.w) continue;
                  acc += x.at(n, c, yy, xx) * w.at(o, c, i, j);
                }
              }
            }
            expected.push_back(acc);
          }
        }
      }
    }
    EXPECT_TRUE(mt::values_near(y, {2, k.o, oh, ow}, expected, 1e-12))
        << "c=" << k.c << " h=" << k.h << " w=" << k.w << " k=" << k.kh << "x" << k.kw << " stride "
        << k.stride << " padding " << k.pad;
    EXPECT_TRUE(mt::check_gradients(
        [k](const Args& v) { return ml::square(ml::conv2d(v[0], v[1], TD(), k.stride, k.pad)); },
        {{1, k.c, k.h, k.w}, {k.o, k.c, k.kh, k.kw}}))
        << "stride " << k.stride << " padding " << k.pad;
  }
}

// im2col gives, for every geometry (size-keeping ones take shifted copies of the image
// planes, others read a bordered copy row by row, strided or not), the columns of the
// definition, bit for bit: row (c, i, j), column b*L + y*ow + q holds input
// (b, c, y*stride - pad + i, q*stride - pad + j), zero outside.
TEST(Conv, Im2colGivesTheColumnsOfTheDefinition) {
  struct Case {
    ml::Index c, h, w, k, stride, pad;
  };
  const std::vector<Case> cases{{1, 5, 5, 3, 1, 1},  {3, 4, 7, 3, 1, 1},   {2, 7, 6, 5, 1, 2},
                                {2, 1, 1, 3, 1, 1},  {1, 2, 3, 5, 1, 2},   {2, 3, 1, 3, 1, 1},
                                {2, 4, 4, 1, 1, 0},  {1, 3, 3, 7, 1, 3},   {1, 5, 5, 3, 2, 1},
                                {2, 9, 11, 3, 1, 0}, {1, 28, 28, 3, 1, 1}, {2, 13, 13, 3, 2, 0},
                                {1, 6, 40, 3, 1, 0}, {1, 5, 5, 3, 1, 2}};
  ml::Generator gen(31);
  for (const auto& k : cases) {
    const ml::Index nb = 3;
    const ml::Conv2dGeometry g{k.c, k.h, k.w, k.k, k.k, k.stride, k.pad};
    const ml::Index oh = g.out_h(), ow = g.out_w(), l = oh * ow;
    auto x = ml::randn<float>({nb, k.c, k.h, k.w}, gen);
    const auto size = static_cast<std::size_t>(g.patch() * nb * l);
    std::vector<float> got(size, -1.0F), want(size, 0.0F);
    ml::detail::im2col(x.data(), g, nb, got.data());
    for (ml::Index ch = 0; ch < k.c; ++ch) {
      for (ml::Index i = 0; i < k.k; ++i) {
        for (ml::Index j = 0; j < k.k; ++j) {
          const ml::Index row = (ch * k.k + i) * k.k + j;
          for (ml::Index b = 0; b < nb; ++b) {
            for (ml::Index y = 0; y < oh; ++y) {
              for (ml::Index q = 0; q < ow; ++q) {
                const ml::Index yy = y * k.stride - k.pad + i, xx = q * k.stride - k.pad + j;
                if (yy < 0 || yy >= k.h || xx < 0 || xx >= k.w) continue;
                want[static_cast<std::size_t>(row * nb * l + b * l + y * ow + q)] =
                    x.data()[((b * k.c + ch) * k.h + yy) * k.w + xx];
              }
            }
          }
        }
      }
    }
    EXPECT_EQ(got, want) << "c=" << k.c << " h=" << k.h << " w=" << k.w << " kernel " << k.k
                         << " stride " << k.stride << " padding " << k.pad;
  }
}

// col2im adds each im2col row's terms into the images, in row order per pixel: float
// rows of every width from 1 to 20 (whole vectors, a half vector and single lanes on
// SIMD targets), unpadded, padded and strided, give the bits of the plain loop. The
// images start with negative zeros and NaNs, which must stay as they are where no
// term lands.
TEST(Conv, Col2imAddsTheTermsOfEveryRowInOrder) {
  ml::Generator gen(37);
  for (ml::Index ow = 1; ow <= 20; ++ow) {
    for (const auto& [stride, pad] : {std::pair<ml::Index, ml::Index>{1, 0}, {1, 1}, {2, 1}}) {
      const ml::Index kernel = 3, nb = 2, c = 2, h = 4;
      const ml::Index w = (ow - 1) * stride + kernel - 2 * pad;
      if (w < 1) continue;
      const ml::Conv2dGeometry g{c, h, w, kernel, kernel, stride, pad};
      ASSERT_EQ(g.out_w(), ow);
      const ml::Index oh = g.out_h(), l = oh * ow;
      const auto cols = ml::randn<float>({g.patch(), nb * l}, gen);
      const auto x0 = ml::randn<float>({nb, c, h, w}, gen);
      std::vector<float> got(x0.data(), x0.data() + x0.numel());
      for (std::size_t e = 0; e < got.size(); e += 3) {
        got[e] = e % 2 == 0 ? -0.0F : std::numeric_limits<float>::quiet_NaN();
      }
      std::vector<float> want = got;
      ml::detail::col2im_add(cols.data(), g, nb, got.data());
      for (ml::Index ch = 0; ch < c; ++ch) {
        for (ml::Index i = 0; i < kernel; ++i) {
          for (ml::Index j = 0; j < kernel; ++j) {
            const float* row = cols.data() + ((ch * kernel + i) * kernel + j) * nb * l;
            for (ml::Index b = 0; b < nb; ++b) {
              for (ml::Index y = 0; y < oh; ++y) {
                for (ml::Index q = 0; q < ow; ++q) {
                  const ml::Index yy = y * stride - pad + i, xx = q * stride - pad + j;
                  if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                  want[static_cast<std::size_t>(((b * c + ch) * h + yy) * w + xx)] +=
                      row[b * l + y * ow + q];
                }
              }
            }
          }
        }
      }
      const auto bits = [](const std::vector<float>& v) {
        std::vector<std::uint32_t> b(v.size());
        std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
        return b;
      };
      EXPECT_EQ(bits(got), bits(want))
          << "output width " << ow << " stride " << stride << " padding " << pad;
    }
  }
}
