#pragma once
/// @file
/// start_thread: std::thread with a typed error when the system cannot create one.

#include <system_error>
#include <thread>
#include <utility>

#include "metalearn/core/error.hpp"

namespace metalearn::detail {

/// A thread running fn(). When the system refuses to create it (std::thread throws
/// std::system_error: a process or address-space limit), throws ResourceError naming
/// `who` and the reason instead; nothing has started then, so the caller only has to
/// stop and join the threads it started before.
template <class F>
std::thread start_thread(const char* who, F&& fn) {
  try {
    return std::thread(std::forward<F>(fn));
  } catch (const std::system_error& e) {
    throw_error<ResourceError>(who, ": could not start a thread (", e.what(),
                               "); lower the number of threads or raise the process's limits");
  }
}

}  // namespace metalearn::detail
