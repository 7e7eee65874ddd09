// metalearn: train, resume, evaluate and inspect meta-learning runs from the command line.
//
//   metalearn train ALGORITHM [--tasks FAMILY] [--config run.json] [--out RUN_DIR] [flags]
//   metalearn resume RUN_DIR [--steps N] [--time-limit S]
//   mpirun -np N metalearn train|resume ... --distributed[=deterministic]
//   metalearn evaluate RUN_DIR|CHECKPOINT [--episodes 600] [--ways N] [--shots K] [--steps S]
//   metalearn report RUN_DIR [RUN_DIR...] [--out FILE.html]
//   metalearn inspect FILE.safetensors
//
// `metalearn train ALGORITHM --help` lists every option of the algorithm, of the tasks
// and of the run, with its default for that algorithm and task family.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <metalearn/core/error.hpp>
#include <string>
#include <vector>

#include "src/cli/report.hpp"
#include "src/cli/run.hpp"

#if defined(METALEARN_CLI_WITH_MPI)
#include <metalearn/distributed/communicator.hpp>
#endif

namespace cli = metalearn::cli;

namespace {

// Set by SIGINT/SIGTERM and polled after every meta-step (FitOptions::stop): the run
// writes a checkpoint and ends. A signal handler can only reach a static flag.
volatile std::sig_atomic_t g_stop_requested =
    0;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

extern "C" void request_stop(int /*signal*/) {
  g_stop_requested = 1;
}

cli::Reporting reporting(bool quiet) {
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  return cli::Reporting{
      .out = &std::cout, .progress = !quiet, .stop = [] { return g_stop_requested != 0; }};
}

/// The value after `flag` in argv (before the app is built: the algorithm and the task
/// family decide which flags exist and their defaults).
std::string scan(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (flag == argv[i]) return argv[i + 1];
    const std::string a = argv[i];
    if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
  }
  const std::string last = argc > 1 ? argv[argc - 1] : "";
  if (last.rfind(flag + "=", 0) == 0) return last.substr(flag.size() + 1);
  return "";
}

int usage(const std::string& problem) {
  if (!problem.empty()) fmt::print(stderr, "metalearn: {}\n", problem);
  std::string algorithms;
  for (const auto& [name, families] : cli::algorithm_tasks()) {
    std::string f;
    for (const auto& family : families) f += (f.empty() ? "" : ", ") + family;
    algorithms += fmt::format("  {:<10} tasks: {}\n", name, f);
  }
  fmt::print(problem.empty() ? stdout : stderr,
             "usage:\n"
             "  metalearn train ALGORITHM [--tasks FAMILY] [--config run.json] [--out RUN_DIR] "
             "[options]\n"
             "  metalearn resume RUN_DIR [--steps N] [--time-limit SECONDS]\n"
             "  mpirun -np N metalearn train|resume ... --distributed[=deterministic]\n"
             "  metalearn evaluate RUN_DIR|CHECKPOINT [--episodes N] [--ways N] [--shots K] "
             "[--steps S]\n"
             "  metalearn report RUN_DIR [RUN_DIR...] [--out FILE.html]\n"
             "  metalearn inspect FILE.safetensors\n"
             "algorithms:\n{}"
             "`metalearn train ALGORITHM --help` lists the options of ALGORITHM.\n",
             algorithms);
  return problem.empty() ? 0 : 2;
}

/// Runs a command's body: its exit code, or the error on stderr (naming the command)
/// and 1.
int guarded(const char* command, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    fmt::print(stderr, "metalearn {}: {}\n", command, e.what());
    return 1;
  }
}

/// --distributed[=deterministic], the flag of train and resume.
struct DistributedFlags {
  std::string mode;  ///< empty: one process; "sum" or "deterministic"

  void add(CLI::App& app) {
    app.add_flag("--distributed{sum}", mode,
                 "share each meta-batch among the ranks of an MPI job (mpirun -np N metalearn "
                 "...; rank 0 writes the run folder): =sum (the default) adds the ranks' "
                 "gradients in one all-reduce, =deterministic in task order, giving the "
                 "single-process bits for any number of ranks")
        ->check(CLI::IsMember({"sum", "deterministic"}));
  }
};

/// Runs the body of a train or resume command. With --distributed, MPI is initialised
/// for the call, rank 0 alone prints, and an error on any rank ends the whole job with
/// that rank's message (the other ranks would wait for it in a collective).
int training(const char* command, const DistributedFlags& flags, bool quiet,
             const std::function<int(const cli::Reporting&, const cli::Distribution&)>& body) {
  if (flags.mode.empty()) {
    return guarded(command, [&] { return body(reporting(quiet), cli::Distribution{}); });
  }
  const cli::Distribution distribution{.enabled = true,
                                       .deterministic = flags.mode == "deterministic"};
#if defined(METALEARN_CLI_WITH_MPI)
  const metalearn::distributed::Environment mpi;
  const metalearn::distributed::Communicator world;
  cli::Reporting r = reporting(quiet);
  std::ostream silent(nullptr);  // discards what ranks other than 0 would print
  if (world.rank() != 0) {
    r.out = &silent;
    r.progress = false;
  }
  if (world.size() == 1) return guarded(command, [&] { return body(r, distribution); });
  return metalearn::distributed::or_abort(world, [&] { return body(r, distribution); });
#else
  // train() names the missing MPI.
  return guarded(command, [&] { return body(reporting(quiet), distribution); });
#endif
}

int parse_or_code(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return -1;
}

int train_command(int argc, char** argv) {
  // argv[1] is "train"; the algorithm follows.
  if (argc < 3 || argv[2][0] == '-') {
    if (argc >= 3 && (std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0)) {
      return usage("");
    }
    return usage("train: name an algorithm");
  }
  const std::string algorithm = argv[2];
  std::string tasks = scan(argc, argv, "--tasks");
  const std::string config_file = scan(argc, argv, "--config");
  cli::RunConfig config;
  try {
    if (!config_file.empty()) {
      std::ifstream f(config_file);
      if (!f.good()) throw metalearn::IoError("cannot read " + config_file);
      config = cli::config_from_json(cli::Json::parse(f), config_file);
      if (config.algorithm != algorithm) {
        throw metalearn::ValueError(config_file + " is a " + config.algorithm + " run, not " +
                                    algorithm);
      }
      if (!tasks.empty() && tasks != config.tasks) {
        throw metalearn::ValueError(config_file + " trains on " + config.tasks + ", not " + tasks);
      }
    } else {
      const auto it = cli::algorithm_tasks().find(algorithm);
      if (tasks.empty() && it != cli::algorithm_tasks().end()) tasks = it->second.front();
      config = cli::default_config(algorithm, tasks);
    }
  } catch (const std::exception& e) {
    return usage(e.what());
  }

  CLI::App app(fmt::format("metalearn train {}: meta-train {} on {} tasks", algorithm, algorithm,
                           config.tasks),
               "metalearn train " + algorithm);
  std::string positional, tasks_flag, config_flag;
  std::string out = fmt::format("runs/{}_{}", algorithm, config.tasks);
  bool quiet = false;
  app.add_option("algorithm", positional, "the algorithm")->required();
  app.add_option("--tasks", tasks_flag, "task family")->default_str(config.tasks);
  app.add_option("--config", config_flag, "a run's config.json to repeat (flags override it)");
  app.add_option("--out", out, "run folder")->capture_default_str();
  app.add_flag("--quiet", quiet, "no progress line");
  DistributedFlags distributed;
  distributed.add(app);
  cli::GivenFlags given;
  cli::add_config_flags(app, config, given);
  if (const int code = parse_or_code(app, argc - 1, argv + 1); code >= 0) return code;
  return training("train", distributed, quiet,
                  [&](const cli::Reporting& r, const cli::Distribution& d) {
                    cli::apply_flags(given, config);
                    const cli::TrainOutcome o = cli::train(config, out, /*resume=*/false, r, d);
                    return o.finished || o.stopped ? 0 : 1;
                  });
}

int resume_command(int argc, char** argv) {
  CLI::App app("metalearn resume: continue a run where its last checkpoint left it",
               "metalearn resume");
  std::string dir;
  bool quiet = false;
  std::int64_t steps = 0;
  double time_limit = -1.0;
  app.add_option("run_dir", dir, "run folder")->required();
  app.add_option("--steps", steps, "meta-steps of the whole run (default: the run's)");
  app.add_option("--time-limit", time_limit, "stop after this many seconds (0: no limit)");
  app.add_flag("--quiet", quiet, "no progress line");
  DistributedFlags distributed;
  distributed.add(app);
  if (const int code = parse_or_code(app, argc - 1, argv + 1); code >= 0) return code;
  return training("resume", distributed, quiet,
                  [&](const cli::Reporting& r, const cli::Distribution& d) {
                    cli::RunConfig config = cli::read_config(dir, d);
                    if (steps > 0) config.run.steps = steps;
                    if (time_limit >= 0.0) config.run.time_limit = time_limit;
                    const cli::TrainOutcome o = cli::train(config, dir, /*resume=*/true, r, d);
                    return o.finished || o.stopped ? 0 : 1;
                  });
}

int evaluate_command(int argc, char** argv) {
  CLI::App app(
      "metalearn evaluate: the test metric of a run's last checkpoint, with its 95% "
      "interval (also written to RUN_DIR/evaluation.json)",
      "metalearn evaluate");
  std::string target;
  std::size_t episodes = 600;
  metalearn::Index ways = 0, shots = 0;
  int steps = -1;
  app.add_option("run", target, "run folder, or one of its checkpoint files")->required();
  app.add_option("--episodes", episodes, "test episodes (trials, for RL^2)")->capture_default_str();
  app.add_option("--ways", ways, "classes per test episode (default: the run's)");
  app.add_option("--shots", shots, "support examples per class (default: the run's)");
  app.add_option("--steps", steps, "inner steps at test (default: the run's)");
  if (const int code = parse_or_code(app, argc - 1, argv + 1); code >= 0) return code;
  return guarded("evaluate", [&] {
    cli::EvalRequest request{.episodes = episodes};
    if (ways > 0) request.ways = ways;
    if (shots > 0) request.shots = shots;
    if (steps >= 0) request.steps = steps;
    (void)cli::evaluate(target, request, std::cout);
    return 0;
  });
}

int report_command(int argc, char** argv) {
  CLI::App app("metalearn report: rebuild a run's report.html, or overlay several runs in one",
               "metalearn report");
  std::vector<std::string> dirs;
  std::string out;
  app.add_option("run_dirs", dirs, "run folders")->required();
  app.add_option("--out", out,
                 "the page to write (default: RUN_DIR/report.html for one run, "
                 "comparison.html for several)");
  if (const int code = parse_or_code(app, argc - 1, argv + 1); code >= 0) return code;
  return guarded("report", [&] {
    if (out.empty()) {
      out = dirs.size() == 1 ? (std::filesystem::path(dirs[0]) / "report.html").string()
                             : "comparison.html";
    }
    cli::write_report({dirs.begin(), dirs.end()}, out);
    fmt::print("wrote {}\n", out);
    return 0;
  });
}

int inspect_command(int argc, char** argv) {
  CLI::App app("metalearn inspect: the tensors and metadata of a safetensors file",
               "metalearn inspect");
  std::string file;
  app.add_option("file", file, "a .safetensors file")->required();
  if (const int code = parse_or_code(app, argc - 1, argv + 1); code >= 0) return code;
  return guarded("inspect", [&] {
    cli::inspect(file, std::cout);
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage("name a command");
  const std::string command = argv[1];
  if (command == "train") return train_command(argc, argv);
  if (command == "resume") return resume_command(argc, argv);
  if (command == "evaluate") return evaluate_command(argc, argv);
  if (command == "inspect") return inspect_command(argc, argv);
  if (command == "report") return report_command(argc, argv);
  if (command == "--help" || command == "-h" || command == "help") return usage("");
  return usage("unknown command '" + command + "'");
}
