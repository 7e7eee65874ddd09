// Grad mode and anomaly mode: guards nest, are thread_local, and anomaly mode
// names the op that produced a non-finite value.

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>

#include "metalearn/autograd.hpp"
#include "metalearn/tensor.hpp"

namespace ml = metalearn;
namespace ag = metalearn::autograd;
using TD = ml::Tensor<double>;

TEST(GradMode, EnabledByDefault) {
  EXPECT_TRUE(ag::is_grad_enabled());
}

TEST(GradMode, GuardsNestAndRestore) {
  auto x = ml::ones<double>({2}).requires_grad(true);
  {
    ag::NoGradGuard a;
    EXPECT_FALSE(ag::is_grad_enabled());
    EXPECT_FALSE(ml::exp(x).requires_grad());
    {
      ag::EnableGradGuard b;
      EXPECT_TRUE(ag::is_grad_enabled());
      EXPECT_TRUE(ml::exp(x).requires_grad());
      {
        ag::NoGradGuard c;
        EXPECT_FALSE(ag::is_grad_enabled());
        {
          ag::GradModeGuard d(true);
          EXPECT_TRUE(ag::is_grad_enabled());
        }
        EXPECT_FALSE(ag::is_grad_enabled());
      }
      EXPECT_TRUE(ag::is_grad_enabled());
    }
    EXPECT_FALSE(ag::is_grad_enabled());
  }
  EXPECT_TRUE(ag::is_grad_enabled());
  EXPECT_TRUE(ml::exp(x).requires_grad());
}

TEST(GradMode, RestoredAfterException) {
  try {
    ag::NoGradGuard g;
    throw ml::ValueError("boom");
  } catch (const ml::ValueError&) {
  }
  EXPECT_TRUE(ag::is_grad_enabled());
}

TEST(GradMode, GuardOnOneThreadDoesNotAffectAnother) {
  std::promise<void> guard_set;
  std::promise<void> checked;
  std::shared_future<void> checked_f = checked.get_future().share();
  bool other_saw_disabled = true;
  bool other_recorded = false;
  bool holder_saw_disabled = false;
  std::thread holder([&] {
    ag::NoGradGuard g;
    holder_saw_disabled = !ag::is_grad_enabled();
    guard_set.set_value();
    checked_f.wait();  // keep the guard alive while the other thread works
  });
  guard_set.get_future().wait();
  std::thread other([&] {
    other_saw_disabled = !ag::is_grad_enabled();
    auto x = ml::ones<double>({2}).requires_grad(true);
    other_recorded = ml::exp(x).requires_grad();
  });
  other.join();
  // This (main) thread is also unaffected.
  EXPECT_TRUE(ag::is_grad_enabled());
  checked.set_value();
  holder.join();
  EXPECT_TRUE(holder_saw_disabled);
  EXPECT_FALSE(other_saw_disabled);
  EXPECT_TRUE(other_recorded);
}

TEST(GradMode, NewThreadStartsEnabledEvenIfParentDisabled) {
  ag::NoGradGuard g;
  bool enabled = false;
  std::thread t([&] { enabled = ag::is_grad_enabled(); });
  t.join();
  EXPECT_TRUE(enabled);
  EXPECT_FALSE(ag::is_grad_enabled());
}

TEST(AnomalyMode, OffByDefaultAndNothingThrown) {
  EXPECT_FALSE(ag::is_anomaly_enabled());
  auto x = ml::from_vector<double>({-1.0, 1.0});
  TD y;
  EXPECT_NO_THROW(y = ml::log(x));
  EXPECT_TRUE(std::isnan(y.data()[0]));
}

TEST(AnomalyMode, LogOfNegativeNamesLog) {
  auto x = ml::from_vector<double>({-1.0, 1.0}).requires_grad(true);
  ag::AnomalyGuard anomaly;
  EXPECT_TRUE(ag::is_anomaly_enabled());
  try {
    (void)ml::log(x);
    FAIL() << "nothing thrown";
  } catch (const ml::ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("log"), std::string::npos) << msg;
  }
  // Also without requires_grad.
  EXPECT_THROW((void)ml::log(ml::from_vector<double>({-2.0})), ml::ValueError);
}

TEST(AnomalyMode, GuardRestoresAndIsThreadLocal) {
  {
    ag::AnomalyGuard anomaly;
    bool other = true;
    std::thread t([&] { other = ag::is_anomaly_enabled(); });
    t.join();
    EXPECT_FALSE(other);
    {
      ag::AnomalyGuard off(false);
      EXPECT_FALSE(ag::is_anomaly_enabled());
    }
    EXPECT_TRUE(ag::is_anomaly_enabled());
  }
  EXPECT_FALSE(ag::is_anomaly_enabled());
}

TEST(AnomalyMode, NaNInBackwardNamesTheBackwardOp) {
  // sqrt(0) is finite but its derivative is not: 0 * d/dx sqrt(x) at 0 is 0 * inf = NaN.
  auto x = ml::from_vector<double>({0.0, 1.0}).requires_grad(true);
  ag::AnomalyGuard anomaly;
  auto y = ml::sum(ml::mul(ml::sqrt(x), ml::from_vector<double>({0.0, 1.0})));
  try {
    y.backward();
    FAIL() << "nothing thrown";
  } catch (const ml::ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("backward"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sqrt"), std::string::npos) << msg;
  }
}

TEST(AnomalyMode, NaNInBackwardWithoutGuardIsSilent) {
  auto x = ml::from_vector<double>({0.0, 1.0}).requires_grad(true);
  auto y = ml::sum(ml::mul(ml::sqrt(x), ml::from_vector<double>({0.0, 1.0})));
  EXPECT_NO_THROW(y.backward());
  EXPECT_TRUE(std::isnan(x.grad().data()[0]));
}
