// Storage blocks come from a per-thread cache of freed blocks: small ones by 64-byte
// size class, large ones by the smallest cached block that holds the request with at
// most half the request to spare (so a support-set tensor may take a block that a
// query-set tensor left, and fewer blocks sit idle). Meta-learning repeats the same
// shapes every step, so after the first step buffers are reused: large ones are not
// returned to the kernel and faulted in again (glibc serves such sizes with
// mmap/munmap), and the thousands of small ones a meta-step records skip malloc's
// bins (a vector per 64-byte size class). A thread caches only the large blocks it
// made itself: tensors cross threads (a task's gradients are summed on whichever
// thread finishes the tasks before it), and a cache that kept every block handed to
// it would grow step after step.

#include <array>
#include <cstdlib>
#include <map>
#include <new>
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
      for (void* p : blocks) free_block(p, bytes);
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
    const std::size_t most = bytes + bytes / 2;
    for (auto it = free_.lower_bound(bytes); it != free_.end() && it->first <= most; ++it) {
      if (it->second.empty()) continue;
      void* p = it->second.back();
      it->second.pop_back();
      cached_ -= it->first;
      return p;
    }
    auto* base = static_cast<unsigned char*>(std::aligned_alloc(kStorageAlignment, bytes + kTag));
    if (base == nullptr) throw std::bad_alloc();
    Tag* tag = new (base) Tag{this, bytes};
    return tag + 1;
  }
  void release(void* p, std::size_t bytes) noexcept {
    if (bytes >= kCachedBlockBytes) {
      const Tag* tag = tag_of(p);
      bytes = tag->capacity;  // the block may be larger than its request
      if (tag->owner != this) {
        // Made by another thread's cache: caching it here would grow this cache by
        // every block another thread hands over, step after step.
        free_block(p, bytes);
        return;
      }
    }
    if (cached_ + bytes > kMaxCachedBytes) {
      free_block(p, bytes);
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
      free_block(p, bytes);
    }
  }
  /// Returns a block to malloc whichever thread made it.
  static void free_block(void* p, std::size_t bytes) noexcept {
    std::free(bytes >= kCachedBlockBytes ? static_cast<unsigned char*>(p) - kTag : p);
  }
  static bool alive() noexcept { return alive_; }

 private:
  // A large block carries, in the 64 bytes before it, the address of the cache
  // that made it (compared, never dereferenced: that thread may have ended) and
  // its size, which a request it serves may not fill.
  struct alignas(kStorageAlignment) Tag {
    const BlockCache* owner;
    std::size_t capacity;
  };
  static constexpr std::size_t kTag = sizeof(Tag);
  static_assert(kTag == kStorageAlignment);
  static const Tag* tag_of(void* p) noexcept {
    return std::launder(reinterpret_cast<const Tag*>(static_cast<unsigned char*>(p) - kTag));
  }

  std::map<std::size_t, std::vector<void*>> free_;  // by capacity
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
    BlockCache::free_block(p, bytes);  // during thread teardown
  }
}

}  // namespace metalearn::detail
