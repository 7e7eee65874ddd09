// Reptile: the meta-update against a hand computation of exact inner steps on
// linear regression (SGD and Adam), annealing of the outer step, determinism across
// threads, non-transductive evaluation, errors, and a short sinusoid run.
#include <gtest/gtest.h>

#include <cmath>
#include <metalearn/metalearn.hpp>
#include <tuple>

namespace ml = metalearn;
namespace alg = metalearn::algorithms;

namespace {

ml::data::Task<double> line_task(ml::Generator& gen, ml::Index shots) {
  ml::data::Task<double> t;
  t.support_x = ml::uniform<double>({shots, 1}, gen, -2.0, 2.0);
  t.support_y = ml::uniform<double>({shots, 1}, gen, -1.0, 1.0);
  t.ways = 1;
  t.shots = shots;
  return t;
}

// Gradient of mean((w x + b - y)^2) w.r.t. (w, b) on the task's support set.
std::pair<double, double> line_gradient(const ml::data::Task<double>& t, double w, double b) {
  const ml::Index n = t.support_x.numel();
  double gw = 0, gb = 0;
  for (ml::Index i = 0; i < n; ++i) {
    const double x = t.support_x.data()[i];
    const double r = w * x + b - t.support_y.data()[i];
    gw += 2.0 * r * x / static_cast<double>(n);
    gb += 2.0 * r / static_cast<double>(n);
  }
  return {gw, gb};
}

// `steps` full-batch gradient steps of f(w, b) = mean((w x + b - y)^2), returning
// the final (w, b).
std::pair<double, double> sgd_by_hand(const ml::data::Task<double>& t, double w, double b,
                                      double lr, int steps) {
  for (int k = 0; k < steps; ++k) {
    const auto [gw, gb] = line_gradient(t, w, b);
    w -= lr * gw;
    b -= lr * gb;
  }
  return {w, b};
}

// The inner-optimizer state a Reptile carries (empty without carry_inner_state).
template <class T>
ml::optim::OptimizerState<T> inner_of(const alg::Reptile<T>& r) {
  return r.state().inner_optimizer.value_or(ml::optim::OptimizerState<T>{});
}

std::vector<double> values_of(const ml::nn::Module<double>& m) {
  std::vector<double> out;
  for (const auto& p : m.parameters()) out.insert(out.end(), p.data(), p.data() + p.numel());
  return out;
}

// `steps` meta-batches of `tasks` 3-way tasks on 2-D inputs with 9 labelled support
// examples each and no query set.
std::vector<ml::data::TaskBatch<double>> labelled_batches(ml::Generator& gen, int steps,
                                                          int tasks) {
  std::vector<ml::data::TaskBatch<double>> out;
  for (int step = 0; step < steps; ++step) {
    ml::data::TaskBatch<double> batch;
    for (int i = 0; i < tasks; ++i) {
      ml::data::Task<double> t;
      t.support_x = ml::randn<double>({9, 2}, gen);
      t.support_labels = {0, 1, 2, 0, 1, 2, 0, 1, 2};
      t.ways = 3;
      batch.push_back(t);
    }
    out.push_back(batch);
  }
  return out;
}

}  // namespace

TEST(Reptile, SgdMetaStepMatchesClosedFormInnerSolution) {
  ml::Generator gen(3);
  ml::nn::Linear<double> model(1, 1, gen);
  const double w0 = model.named_parameters().at("weight").item();
  const double b0 = model.named_parameters().at("bias").item();
  const ml::data::TaskBatch<double> batch{line_task(gen, 6), line_task(gen, 6), line_task(gen, 6)};
  const double lr = 0.1, eps = 0.5;
  const int steps = 4;
  alg::Reptile<double> reptile(
      model, alg::ReptileOptions<double>{.inner_optimizer = alg::InnerOptimizer::kSgd,
                                         .inner_lr = lr,
                                         .inner_steps = steps,
                                         .inner_batch = 0,
                                         .outer_step = eps,
                                         .loss = alg::LossKind::kMse});
  double mw = 0, mb = 0;
  for (const auto& t : batch) {
    const auto [w, b] = sgd_by_hand(t, w0, b0, lr, steps);
    mw += (w - w0) / 3.0;
    mb += (b - b0) / 3.0;
  }
  const auto stats = reptile.meta_step(batch);
  EXPECT_NEAR(model.named_parameters().at("weight").item(), w0 + eps * mw, 1e-12);
  EXPECT_NEAR(model.named_parameters().at("bias").item(), b0 + eps * mb, 1e-12);
  // No query set: pre/post are the first and last inner losses, which fall.
  EXPECT_EQ(stats.tasks, 3u);
  EXPECT_LT(stats.post_loss, stats.pre_loss.value());
  EXPECT_FALSE(stats.post_accuracy.has_value());
  EXPECT_EQ(reptile.steps_taken(), 1);
}

TEST(Reptile, SerialStepWithFullOuterStepLandsOnTaskSolution) {
  ml::Generator gen(4);
  ml::nn::Linear<double> model(1, 1, gen);
  const double w0 = model.named_parameters().at("weight").item();
  const double b0 = model.named_parameters().at("bias").item();
  const auto task = line_task(gen, 5);
  alg::Reptile<double> reptile(
      model, alg::ReptileOptions<double>{.inner_optimizer = alg::InnerOptimizer::kSgd,
                                         .inner_lr = 0.05,
                                         .inner_steps = 7,
                                         .inner_batch = 0,
                                         .outer_step = 1.0,
                                         .loss = alg::LossKind::kMse});
  reptile.meta_step({task});
  const auto [w, b] = sgd_by_hand(task, w0, b0, 0.05, 7);
  EXPECT_NEAR(model.named_parameters().at("weight").item(), w, 1e-12);
  EXPECT_NEAR(model.named_parameters().at("bias").item(), b, 1e-12);
}

TEST(Reptile, AdamInnerStepMovesEachParameterByItsLearningRate) {
  // First Adam step with beta1 = 0: m = g, v = (1 - beta2) g^2, so after bias
  // correction the step is -lr * g / (|g| + eps).
  ml::Generator gen(5);
  ml::nn::Linear<double> model(1, 1, gen);
  const double w0 = model.named_parameters().at("weight").item();
  const double b0 = model.named_parameters().at("bias").item();
  const auto task = line_task(gen, 8);
  alg::Reptile<double> reptile(model, alg::ReptileOptions<double>{.inner_lr = 0.1,
                                                                  .inner_steps = 1,
                                                                  .inner_batch = 0,
                                                                  .outer_step = 1.0,
                                                                  .loss = alg::LossKind::kMse});
  reptile.meta_step({task});
  const auto [gw, gb] = line_gradient(task, w0, b0);
  EXPECT_NEAR(model.named_parameters().at("weight").item(), w0 - 0.1 * gw / (std::abs(gw) + 1e-8),
              1e-10);
  EXPECT_NEAR(model.named_parameters().at("bias").item(), b0 - 0.1 * gb / (std::abs(gb) + 1e-8),
              1e-10);
}

TEST(Reptile, CarriedInnerStateContinuesAdamFromTaskToTask) {
  // One full-batch Adam step (beta1 = 0) per task; the second task of the meta-batch
  // continues the first one's second moment and step count: at t = 2,
  // v = beta2 (1 - beta2) g1^2 + (1 - beta2) g2^2 and the step is
  // -lr g2 / (sqrt(v / (1 - beta2^2)) + eps).
  const double lr = 0.1, beta2 = 0.999, eps = 1e-8;
  auto run = [&](bool carry, int threads) {
    ml::Generator gen(21);
    ml::nn::Linear<double> model(1, 1, gen);
    const auto batch = ml::data::TaskBatch<double>{line_task(gen, 6), line_task(gen, 7)};
    alg::Reptile<double> reptile(model, alg::ReptileOptions<double>{.inner_lr = lr,
                                                                    .adam_beta1 = 0.0,
                                                                    .adam_beta2 = beta2,
                                                                    .carry_inner_state = carry,
                                                                    .inner_steps = 1,
                                                                    .inner_batch = 0,
                                                                    .outer_step = 1.0,
                                                                    .loss = alg::LossKind::kMse,
                                                                    .threads = threads});
    const double w0 = model.named_parameters().at("weight").item();
    const double b0 = model.named_parameters().at("bias").item();
    reptile.meta_step(batch);
    return std::tuple{batch,
                      w0,
                      b0,
                      model.named_parameters().at("weight").item(),
                      model.named_parameters().at("bias").item(),
                      inner_of(reptile)};
  };
  const auto [batch, w0, b0, w, b, state] = run(true, 1);
  const auto [g1w, g1b] = line_gradient(batch[0], w0, b0);
  const auto [g2w, g2b] = line_gradient(batch[1], w0, b0);
  auto second = [&](double g1, double g2) {
    const double v = beta2 * (1 - beta2) * g1 * g1 + (1 - beta2) * g2 * g2;
    return -lr * g2 / (std::sqrt(v) / std::sqrt(1 - beta2 * beta2) + eps);
  };
  const double first_w = -lr * g1w / (std::abs(g1w) + eps);
  const double first_b = -lr * g1b / (std::abs(g1b) + eps);
  EXPECT_NEAR(w, w0 + 0.5 * (first_w + second(g1w, g2w)), 1e-12);
  EXPECT_NEAR(b, b0 + 0.5 * (first_b + second(g1b, g2b)), 1e-12);
  EXPECT_EQ(state.step, 2);
  EXPECT_EQ(state.buffers.size(), 4u);  // exp_avg and exp_avg_sq of weight and bias

  // More threads change nothing (the tasks run in order); a fresh Adam per task
  // takes a sign step in both tasks and carries nothing.
  const auto [batch3, w03, b03, w3, b3, state3] = run(true, 3);
  EXPECT_EQ(w3, w);
  EXPECT_EQ(b3, b);
  const auto [batchf, w0f, b0f, wf, bf, statef] = run(false, 1);
  EXPECT_NEAR(wf, w0 + 0.5 * (first_w - lr * g2w / (std::abs(g2w) + eps)), 1e-12);
  EXPECT_EQ(statef.step, 0);
  EXPECT_TRUE(statef.buffers.empty());
}

TEST(Reptile, AdaptationStartsFromTheCarriedStateWithoutChangingIt) {
  ml::Generator gen(22);
  ml::nn::MLP<double> model({2, 8, 3}, gen);
  ml::Generator data_gen(23);
  const auto stream = labelled_batches(data_gen, 3, 2);
  const auto options = alg::ReptileOptions<double>{.inner_steps = 3, .inner_batch = 4, .seed = 3};
  auto carrying = options;
  carrying.carry_inner_state = true;
  alg::Reptile<double> carried(model, carrying);
  for (const auto& batch : stream) carried.meta_step(batch);
  const auto before = inner_of(carried);
  EXPECT_EQ(before.step, 3 * 2 * 3);

  const auto& task = stream.front().front();
  const auto a = carried.adapt(task, 4, 4, 1);
  const auto again = carried.adapt(task, 4, 4, 1);
  const auto after = inner_of(carried);
  EXPECT_EQ(after.step, before.step);
  for (const auto& [name, t] : before.buffers) {
    const auto& u = after.buffers.at(name);
    for (ml::Index k = 0; k < t.numel(); ++k) ASSERT_EQ(t.data()[k], u.data()[k]) << name;
  }
  // Same theta, same mini-batches: only the starting state differs from a fresh Adam.
  alg::Reptile<double> fresh(model, options);
  const auto f = fresh.adapt(task, 4, 4, 1);
  double diff = 0;
  for (const auto& [name, t] : a) {
    const auto& u = again.at(name);
    const auto& v = f.at(name);
    for (ml::Index k = 0; k < t.numel(); ++k) {
      ASSERT_EQ(t.data()[k], u.data()[k]) << name;
      diff += std::abs(t.data()[k] - v.data()[k]);
    }
  }
  EXPECT_GT(diff, 1e-6);
}

TEST(Reptile, ResumingWithTheCarriedInnerStateContinuesBitForBit) {
  const auto options = alg::ReptileOptions<double>{.carry_inner_state = true,
                                                   .inner_steps = 3,
                                                   .inner_batch = 4,
                                                   .outer_step_final = 0.0,
                                                   .anneal_steps = 6,
                                                   .seed = 6};
  ml::Generator data_gen(24);
  const auto stream = labelled_batches(data_gen, 6, 3);
  ml::Generator gen(25);
  ml::nn::MLP<double> model({2, 8, 3}, gen);
  ml::nn::MLP<double> fresh({2, 8, 3}, gen);
  alg::Reptile<double> straight(model, options);
  for (int i = 0; i < 3; ++i) straight.meta_step(stream[i]);
  const alg::LearnerState<double> state = straight.state();
  ASSERT_TRUE(state.inner_optimizer.has_value());
  for (int i = 3; i < 6; ++i) straight.meta_step(stream[i]);

  alg::Reptile<double> resumed(fresh, options);
  resumed.load_state(state);
  EXPECT_EQ(resumed.steps_taken(), 3);
  for (int i = 3; i < 6; ++i) resumed.meta_step(stream[i]);
  EXPECT_EQ(values_of(fresh), values_of(model));
  EXPECT_EQ(inner_of(resumed).step, inner_of(straight).step);

  // Without the carried state the run goes elsewhere.
  ml::nn::MLP<double> other({2, 8, 3}, gen);
  alg::Reptile<double> forgetful(other, options);
  alg::LearnerState<double> no_memory = state;
  no_memory.inner_optimizer = ml::optim::OptimizerState<double>{};
  forgetful.load_state(no_memory);
  for (int i = 3; i < 6; ++i) forgetful.meta_step(stream[i]);
  EXPECT_NE(values_of(other), values_of(model));
}

TEST(Reptile, RejectsACarriedStateOfOtherParametersAndBatchedTasks) {
  ml::Generator gen(26);
  ml::nn::MLP<double> model({2, 8, 3}, gen);
  ml::nn::MLP<double> wider({2, 9, 3}, gen);
  ml::Generator data_gen(27);
  const auto stream = labelled_batches(data_gen, 1, 2);
  const auto options = alg::ReptileOptions<double>{.carry_inner_state = true};
  alg::Reptile<double> narrow(model, options);
  narrow.meta_step(stream[0]);
  alg::Reptile<double> wide(wider, options);
  alg::LearnerState<double> mixed = wide.state();
  mixed.inner_optimizer = narrow.state().inner_optimizer;
  EXPECT_THROW(wide.load_state(mixed), ml::ShapeError);
  alg::LearnerState<double> foreign = narrow.state();
  foreign.inner_optimizer->buffers.insert("9.exp_avg", ml::zeros<double>({3}));
  EXPECT_THROW(narrow.load_state(foreign), ml::ValueError);
  EXPECT_EQ(inner_of(wide).step, 0);  // a refused state leaves the old one
  // A task that throws part-way through a meta-batch leaves theta and the state alone.
  const auto theta = values_of(model);
  const auto step = inner_of(narrow).step;
  ml::data::TaskBatch<double> broken = stream[0];
  broken.push_back(ml::data::Task<double>{});
  EXPECT_THROW(narrow.meta_step(broken), ml::ValueError);
  EXPECT_EQ(inner_of(narrow).step, step);
  EXPECT_EQ(values_of(model), theta);
  ml::nn::Linear<double> line(1, 1, gen);
  EXPECT_THROW(alg::Reptile<double>(line, alg::ReptileOptions<double>{.carry_inner_state = true,
                                                                      .loss = alg::LossKind::kMse,
                                                                      .batch_tasks = true}),
               ml::ValueError);
}

TEST(Reptile, OuterStepAnnealsLinearly) {
  ml::Generator gen(6);
  ml::nn::Linear<double> model(1, 1, gen);
  alg::Reptile<double> reptile(model, alg::ReptileOptions<double>{.inner_steps = 1,
                                                                  .outer_step = 1.0,
                                                                  .outer_step_final = 0.2,
                                                                  .anneal_steps = 4,
                                                                  .loss = alg::LossKind::kMse});
  const std::vector<double> expected{1.0, 0.8, 0.6, 0.4, 0.2, 0.2};
  for (double e : expected) {
    EXPECT_NEAR(reptile.current_outer_step(), e, 1e-12);
    reptile.meta_step({line_task(gen, 4)});
  }
}

TEST(Reptile, ParallelTasksEqualSerialBitForBit) {
  auto run = [](int threads) {
    ml::Generator gen(7);
    ml::nn::MLP<double> model({2, 8, 3}, gen);
    alg::Reptile<double> reptile(
        model, alg::ReptileOptions<double>{
                   .inner_steps = 4, .inner_batch = 4, .threads = threads, .seed = 9});
    ml::Generator data_gen(11);
    for (const auto& batch : labelled_batches(data_gen, 3, 5)) reptile.meta_step(batch);
    return values_of(model);
  };
  const auto serial = run(1);
  // 5 tasks: on 3 threads two rounds side by side; on 2 threads the fifth task runs
  // alone, its operations split over the pool.
  for (int threads : {2, 3}) {
    const auto parallel = run(threads);
    ASSERT_EQ(serial.size(), parallel.size());
    for (std::size_t i = 0; i < serial.size(); ++i) {
      EXPECT_EQ(serial[i], parallel[i]) << i << " on " << threads << " threads";
    }
  }
}

TEST(Reptile, ResumingFromParametersAndStepCountContinuesBitForBit) {
  // Annealed step size and mini-batches of the support set: both depend on the step
  // counter, so a resumed run must restore it along with theta.
  const auto options = alg::ReptileOptions<double>{
      .inner_steps = 3, .inner_batch = 4, .outer_step_final = 0.0, .anneal_steps = 6, .seed = 5};
  ml::Generator data_gen(12);
  const auto stream = labelled_batches(data_gen, 6, 3);
  ml::Generator gen(13);
  ml::nn::MLP<double> model({2, 8, 3}, gen);
  ml::nn::MLP<double> fresh({2, 8, 3}, gen);  // other initial values
  alg::Reptile<double> straight(model, options);
  for (int i = 0; i < 3; ++i) straight.meta_step(stream[i]);
  const alg::LearnerState<double> saved = straight.state();
  EXPECT_FALSE(saved.inner_optimizer.has_value());
  EXPECT_FALSE(saved.optimizer.has_value());
  for (int i = 3; i < 6; ++i) straight.meta_step(stream[i]);

  alg::Reptile<double> resumed(fresh, options);
  resumed.load_state(saved);
  EXPECT_DOUBLE_EQ(resumed.current_outer_step(), 0.5);
  for (int i = 3; i < 6; ++i) resumed.meta_step(stream[i]);
  EXPECT_EQ(resumed.steps_taken(), 6);
  EXPECT_EQ(values_of(fresh), values_of(model));
  alg::LearnerState<double> bad = resumed.state();
  bad.steps = -1;
  EXPECT_THROW(resumed.load_state(bad), ml::ValueError);
  EXPECT_EQ(resumed.steps_taken(), 6);
}

// batch_tasks: all tasks' inner loops as one graph must reproduce the per-task run
// (same mini-batch orders, elementwise optimizer state) up to rounding.
TEST(Reptile, BatchedTasksEqualThePerTaskRun) {
  struct Case {
    alg::ReptileOptions<double> options;
    bool query;
  };
  const std::vector<Case> cases{
      // Full-batch SGD on regression, with a query set.
      {alg::ReptileOptions<double>{.inner_optimizer = alg::InnerOptimizer::kSgd,
                                   .inner_lr = 0.05,
                                   .inner_steps = 4,
                                   .inner_batch = 0,
                                   .loss = alg::LossKind::kMse},
       true},
      // Adam on mini-batches of 4 of 9 examples, classification, no query set.
      {alg::ReptileOptions<double>{.inner_steps = 5,
                                   .inner_batch = 4,
                                   .outer_step_final = 0.0,
                                   .anneal_steps = 3,
                                   .seed = 8},
       false},
  };
  for (std::size_t c = 0; c < cases.size(); ++c) {
    const bool classify = c == 1;
    ml::Generator data_gen(30);
    std::vector<ml::data::TaskBatch<double>> stream;
    for (int step = 0; step < 3; ++step) {
      ml::data::TaskBatch<double> batch;
      for (int i = 0; i < 4; ++i) {
        ml::data::Task<double> t;
        t.support_x = ml::randn<double>({9, 2}, data_gen);
        if (classify) {
          t.support_labels = {0, 1, 2, 0, 1, 2, 0, 1, 2};
        } else {
          t.support_y = ml::randn<double>({9, 3}, data_gen);
        }
        if (cases[c].query) {
          t.query_x = ml::randn<double>({6, 2}, data_gen);
          t.query_y = ml::randn<double>({6, 3}, data_gen);
        }
        t.ways = 3;
        batch.push_back(t);
      }
      stream.push_back(batch);
    }
    auto run = [&](bool batched, std::vector<alg::StepStats>& stats) {
      ml::Generator gen(31);
      ml::nn::MLP<double> model({2, 8, 3}, gen, ml::nn::Activation::kTanh);
      auto options = cases[c].options;
      options.batch_tasks = batched;
      alg::Reptile<double> reptile(model, options);
      for (const auto& batch : stream) stats.push_back(reptile.meta_step(batch));
      return values_of(model);
    };
    std::vector<alg::StepStats> loop_stats, batched_stats;
    const auto loop = run(false, loop_stats);
    const auto batched = run(true, batched_stats);
    ASSERT_EQ(loop.size(), batched.size());
    for (std::size_t i = 0; i < loop.size(); ++i) {
      EXPECT_NEAR(batched[i], loop[i], 1e-12) << "case " << c << ", value " << i;
    }
    for (std::size_t k = 0; k < loop_stats.size(); ++k) {
      EXPECT_NEAR(batched_stats[k].meta_loss, loop_stats[k].meta_loss, 1e-12) << c;
      EXPECT_NEAR(batched_stats[k].pre_loss.value(), loop_stats[k].pre_loss.value(), 1e-12) << c;
      EXPECT_NEAR(batched_stats[k].post_loss, loop_stats[k].post_loss, 1e-12) << c;
      EXPECT_EQ(batched_stats[k].tasks, loop_stats[k].tasks);
    }
    EXPECT_NE(loop_stats.back().pre_loss.value(), loop_stats.back().post_loss);
  }
}

TEST(Reptile, BatchedTasksRejectModelsLossesAndShapesTheyCannotRun) {
  ml::Generator gen(32);
  ml::nn::ConvNet4<double> convnet(ml::nn::ConvNet4Options{.ways = 5}, gen);
  EXPECT_THROW(alg::Reptile<double>(convnet, alg::ReptileOptions<double>{.batch_tasks = true}),
               ml::ValueError);
  ml::nn::Linear<double> model(1, 1, gen);
  const alg::LossFunction<double> custom = [](const ml::Tensor<double>& p,
                                              const ml::Tensor<double>& y) {
    return ml::sum(ml::square(ml::sub(p, y)));
  };
  EXPECT_THROW(alg::Reptile<double>(
                   model, alg::ReptileOptions<double>{.custom_loss = custom, .batch_tasks = true}),
               ml::ValueError);
  alg::Reptile<double> reptile(
      model, alg::ReptileOptions<double>{.loss = alg::LossKind::kMse, .batch_tasks = true});
  EXPECT_THROW(reptile.meta_step({line_task(gen, 4), line_task(gen, 5)}), ml::ShapeError);
}

TEST(Reptile, NonTransductivePredictionSeesOnlySupportAndItself) {
  ml::Generator gen(12);
  ml::nn::ConvNet4<double> net(ml::nn::ConvNet4Options{.hidden = 4, .image_size = 16, .ways = 3},
                               gen);
  ml::data::Task<double> task;
  task.support_x = ml::randn<double>({3, 1, 16, 16}, gen);
  task.support_labels = {0, 1, 2};
  task.query_x = ml::randn<double>({4, 1, 16, 16}, gen);
  task.query_labels = {0, 1, 2, 0};
  task.ways = 3;
  alg::Reptile<double> reptile(net, alg::ReptileOptions<double>{.transductive = false});
  const auto theta = net.named_parameters();
  const auto out = reptile.predict_query(task, theta);
  ASSERT_EQ(out.shape(), (ml::Shape{4, 3}));
  for (ml::Index q = 0; q < 4; ++q) {
    const auto alone =
        net.forward(ml::concat<double>({task.support_x, ml::slice(task.query_x, 0, q, q + 1)}, 0));
    for (ml::Index c = 0; c < 3; ++c) EXPECT_NEAR(out.at(q, c), alone.at(3, c), 1e-12);
  }
  alg::Reptile<double> trans(net, alg::ReptileOptions<double>{.transductive = true});
  const auto batched = trans.predict_query(task, theta);
  double diff = 0;
  for (ml::Index i = 0; i < batched.numel(); ++i) {
    diff += std::abs(batched.data()[i] - out.data()[i]);
  }
  EXPECT_GT(diff, 1e-6);  // batch statistics of the query set differ
}

TEST(Reptile, RejectsBadOptionsAndEmptyBatches) {
  ml::Generator gen(13);
  ml::nn::Linear<double> model(1, 1, gen);
  EXPECT_THROW(alg::Reptile<double>(model, alg::ReptileOptions<double>{.inner_steps = -1}),
               ml::ValueError);
  EXPECT_THROW(alg::Reptile<double>(model, alg::ReptileOptions<double>{.inner_batch = -2}),
               ml::ValueError);
  EXPECT_THROW(alg::Reptile<double>(model, alg::ReptileOptions<double>{.outer_step = -1.0}),
               ml::ValueError);
  alg::Reptile<double> reptile(model);
  EXPECT_THROW(reptile.meta_step({}), ml::ValueError);
  try {
    reptile.meta_step({ml::data::Task<double>{}});
    FAIL() << "expected ValueError";
  } catch (const ml::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("Reptile::adapt: the task has an empty support set"),
              std::string::npos)
        << e.what();
  }
}

TEST(Reptile, ShortSinusoidRunLowersPostAdaptationLoss) {
  ml::Generator gen(1);
  ml::nn::MLP<float> model({1, 32, 32, 1}, gen);
  const auto options = alg::ReptileOptions<float>{.inner_optimizer = alg::InnerOptimizer::kSgd,
                                                  .inner_lr = 0.02f,
                                                  .inner_steps = 8,
                                                  .inner_batch = 0,
                                                  .eval_inner_steps = 8,
                                                  .outer_step = 0.5f,
                                                  .outer_step_final = 0.05f,
                                                  .anneal_steps = 400,
                                                  .loss = alg::LossKind::kMse,
                                                  .transductive = true,
                                                  .seed = 2};
  alg::Reptile<float> reptile(model, options);
  ml::data::SinusoidTasks<float> family({.shots = 10, .queries = 20});
  ml::data::MetaBatchSampler<float> batches(family, {.batch = 4, .seed = 3});
  const auto before = reptile.evaluate(family, 100);
  for (int step = 0; step < 400; ++step) reptile.meta_step(batches.next());
  const auto after = reptile.evaluate(family, 100);
  EXPECT_LT(after.mean, 0.6 * before.mean) << "before " << before.mean << " after " << after.mean;
}
