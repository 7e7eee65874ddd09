// Storage blocks come from a per-thread cache of freed blocks, matched by exact
// size. Meta-learning repeats the same shapes every step, so after the first step
// buffers are reused: large ones are not returned to the kernel and faulted in
// again (glibc serves such sizes with mmap/munmap), and the thousands of small
// ones a meta-step records skip malloc's bins (a vector per 64-byte size class).

#include <array>
#include <cstdlib>
#include <new>
#include <unordered_map>
#include <vector>

#include "metalearn/tensor/tensor.hpp"

namespace metalearn::detail {
namespace {

constexpr std::size_t kMaxCachedBytes = std::size_t{1} << 30;  // per thread

class BlockCache {
 public:
  ~BlockCache() {
    alive_ = false;
    for (auto& [bytes, blocks] : free_) {
      for (void* p : blocks) std::free(p);
    }
    for (auto& blocks : small_) {
      for (void* p : blocks) std::free(p);
    }
  }
  void* acquire(std::size_t bytes) {
    if (bytes < kCachedBlockBytes) {
      auto& list = small_[bytes / kStorageAlignment];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        cached_ -= bytes;
        return p;
      }
      void* p = std::aligned_alloc(kStorageAlignment, bytes);
      if (p == nullptr) throw std::bad_alloc();
      return p;
    }
    auto it = free_.find(bytes);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= bytes;
      return p;
    }
    void* p = std::aligned_alloc(kStorageAlignment, bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void release(void* p, std::size_t bytes) noexcept {
    if (cached_ + bytes > kMaxCachedBytes) {
      std::free(p);
      return;
    }
    try {
      if (bytes < kCachedBlockBytes) {
        small_[bytes / kStorageAlignment].push_back(p);
        cached_ += bytes;
        return;
      }
      free_[bytes].push_back(p);
      cached_ += bytes;
    } catch (...) {
      std::free(p);
    }
  }
  static bool alive() noexcept { return alive_; }

 private:
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::array<std::vector<void*>, kCachedBlockBytes / kStorageAlignment> small_;
  std::size_t cached_ = 0;
  static thread_local bool alive_;
};

thread_local bool BlockCache::alive_ = true;

BlockCache& cache() {
  thread_local BlockCache c;
  return c;
}

}  // namespace

void* acquire_block(std::size_t bytes) {
  return cache().acquire(bytes);
}

void release_block(void* p, std::size_t bytes) noexcept {
  if (BlockCache::alive()) {
    cache().release(p, bytes);
  } else {
    std::free(p);  // during thread teardown
  }
}

}  // namespace metalearn::detail
