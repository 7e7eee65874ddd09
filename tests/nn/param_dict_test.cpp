// ParamDict: order, lookups, errors, views, shared keys.

#include <gtest/gtest.h>

#include <metalearn/nn.hpp>

namespace ml = metalearn;
using ml::nn::ParamDict;

namespace {
ml::Tensor<float> vec(std::initializer_list<float> v) {
  return ml::from_vector<float>(v);
}
}  // namespace

TEST(ParamDict, KeepsInsertionOrder) {
  ParamDict<float> d;
  d.insert("z.weight", vec({1}));
  d.insert("a.bias", vec({2}));
  d.insert("m", vec({3}));
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.names(), (std::vector<std::string>{"z.weight", "a.bias", "m"}));
  std::vector<float> seen;
  for (const auto& [name, t] : d) seen.push_back(t.item());
  EXPECT_EQ(seen, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(d.values()[1].item(), 2.0f);
}

TEST(ParamDict, LookupAndErrors) {
  ParamDict<float> d{{"fc.weight", vec({1, 2})}, {"fc.bias", vec({3})}};
  EXPECT_TRUE(d.contains("fc.bias"));
  EXPECT_FALSE(d.contains("fc"));
  EXPECT_EQ(d.at("fc.weight").numel(), 2);
  EXPECT_EQ(d.find("nope"), nullptr);
  try {
    (void)d.at("fc.wieght");
    FAIL() << "expected ValueError";
  } catch (const ml::ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("ParamDict::at"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'fc.wieght'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fc.weight, fc.bias"), std::string::npos) << msg;
  }
  EXPECT_THROW(d.insert("fc.bias", vec({0})), ml::ValueError);
  EXPECT_THROW(d.insert("", vec({0})), ml::ValueError);
  EXPECT_THROW(d.insert("a..b", vec({0})), ml::ValueError);
  EXPECT_THROW(d.insert("a b", vec({0})), ml::ValueError);
  EXPECT_THROW(d.insert("x", ml::Tensor<float>()), ml::ValueError);
}

TEST(ParamDict, ManyKeysStayFindable) {
  ParamDict<float> d;
  for (int i = 0; i < 200; ++i) d.insert("layer." + std::to_string(i) + ".w", vec({float(i)}));
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(d.at("layer." + std::to_string(i) + ".w").item(), float(i));
  }
}

TEST(ParamDict, SubViewsStripThePrefix) {
  ParamDict<float> d{{"features.0.weight", vec({1})},
                     {"features.0.bias", vec({2})},
                     {"features.1.weight", vec({3})},
                     {"head.weight", vec({4})}};
  auto f0 = d.sub("features.").sub("0.");
  EXPECT_EQ(f0.prefix(), "features.0.");
  EXPECT_EQ(f0.size(), 2u);
  EXPECT_EQ(f0.names(), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(f0.at("bias").item(), 2.0f);
  EXPECT_FALSE(f0.contains("head.weight"));
  try {
    (void)f0.at("scale");
    FAIL();
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'features.0.scale'"), std::string::npos) << e.what();
  }
  // A view's with_values gives a standalone dict with the stripped names.
  auto w = f0.with_values({vec({10}), vec({20})});
  EXPECT_EQ(w.names(), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(w.at("weight").item(), 10.0f);
}

TEST(ParamDict, CopiesAreIndependentAndShareKeys) {
  ParamDict<float> d{{"a", vec({1})}, {"b", vec({2})}};
  ParamDict<float> c = d;
  c.set("a", vec({5}));
  c.insert("c", vec({6}));
  EXPECT_EQ(d.at("a").item(), 1.0f);
  EXPECT_FALSE(d.contains("c"));
  auto u = d.with_values({vec({7}), vec({8})});
  EXPECT_TRUE(u.shares_keys_with(d));
  EXPECT_EQ(u.at("b").item(), 8.0f);
  EXPECT_EQ(d.at("b").item(), 2.0f);
  EXPECT_THROW((void)d.with_values({vec({1})}), ml::ValueError);
}

TEST(ParamDict, DetachAndClone) {
  ParamDict<double> d{{"w", ml::ones<double>(ml::Shape{2}).requires_grad(true)}};
  auto det = d.detach();
  EXPECT_FALSE(det.at("w").requires_grad());
  EXPECT_EQ(det.at("w").data(), d.at("w").data());
  auto cl = d.clone();
  EXPECT_NE(cl.at("w").data(), d.at("w").data());
  EXPECT_EQ(cl.at("w").to_vector(), d.at("w").to_vector());
}
