// Data threads: when the system refuses a thread for the Omniglot decoder, loading
// throws ResourceError naming the decoder, after joining the decoding threads that
// did start (no std::terminate from a joinable std::thread, no hang).
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "reliability/reliability.hpp"

namespace {

namespace ml = metalearn;
namespace md = metalearn::data;
namespace fs = std::filesystem;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr const char* kDecoder = "OmniglotDataset: PNG decoding threads: could not start a thread";

/// Lets this process's address space grow by `extra` bytes only. For death tests: it
/// runs in the forked child.
void limit_address_space_growth(rlim_t extra) {
  std::ifstream statm("/proc/self/statm");
  unsigned long long pages = 0;
  statm >> pages;
  const auto used = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE));
  const rlimit limit{used + extra, used + extra};
  if (setrlimit(RLIMIT_AS, &limit) != 0) std::_Exit(3);
}

/// Gives new threads stacks of `bytes` (std::thread uses the default attributes).
void set_thread_stack_size(std::size_t bytes) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, bytes) != 0 ||
      pthread_setattr_default_np(&attr) != 0) {
    std::_Exit(4);
  }
  pthread_attr_destroy(&attr);
}

/// Loads `options`; exits 0 when that throws ResourceError naming the decoder, 1 for
/// any other outcome.
[[noreturn]] void load_expecting_resource_error(const md::OmniglotOptions& options) {
  try {
    md::OmniglotDataset ds(options);
  } catch (const ml::ResourceError& e) {
    std::_Exit(std::string(e.what()).find(kDecoder) != std::string::npos ? 0 : 1);
  } catch (...) {
    std::_Exit(1);
  }
  std::_Exit(1);
}

/// A small Omniglot layout (two characters of four blank drawings) decoded by four
/// threads, without a cache.
class OmniglotThreads : public reliability::ScratchDir {
 protected:
  void SetUp() override {
    ScratchDir::SetUp();
    const md::GrayImage blank{md::OmniglotDataset::kSourceSize, md::OmniglotDataset::kSourceSize,
                              std::vector<std::uint8_t>(105 * 105, 255)};
    for (const char* c : {"character01", "character02"}) {
      const fs::path dir = dir_ / "images_background" / "Alpha" / c;
      fs::create_directories(dir);
      for (int i = 1; i <= 4; ++i) {
        md::write_png_gray(dir / ("a_0" + std::to_string(i) + ".png"), blank);
      }
    }
  }
  md::OmniglotOptions options() const {
    return {
        .root = dir_, .split = md::OmniglotSplit::kBackground, .use_cache = false, .threads = 4};
  }
};

TEST_F(OmniglotThreads, NoDecodingThreadStartsGivesResourceError) {
  if (kSanitized) GTEST_SKIP() << "sanitizers reserve more address space than the limit allows";
  EXPECT_EXIT(
      {
        // 2 MiB of room: not enough for one thread's stack (8 MiB by default).
        limit_address_space_growth(rlim_t{2} << 20);
        load_expecting_resource_error(options());
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(OmniglotThreads, RefusedSecondWorkerJoinsTheFirstThenGivesResourceError) {
  if (kSanitized) GTEST_SKIP() << "sanitizers reserve more address space than the limit allows";
  EXPECT_EXIT(
      {
        // Room for one 16 MiB stack and some heap: the first worker thread starts (and
        // is running when the second is refused), the second cannot.
        set_thread_stack_size(std::size_t{16} << 20);
        limit_address_space_growth((rlim_t{16} << 20) + (rlim_t{8} << 20));
        load_expecting_resource_error(options());
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(OmniglotThreads, LoadsWithFourThreadsWhenTheSystemAllowsThem) {
  md::OmniglotDataset ds(options());
  EXPECT_EQ(ds.num_characters(), 2);
  EXPECT_EQ(ds.num_images(), 8);
}

}  // namespace
