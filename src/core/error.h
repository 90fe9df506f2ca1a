// Errors: every failure a user can cause is an ug::Error whose message says where (file, tensor,
// field), what was expected and what was found. The CLI and server catch it at the top level.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace ug {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(std::move(message)) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Adds context in front of an error raised deeper down ("loading DIR: " + inner message).
template <typename Fn>
auto with_context(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace ug

// Checks an invariant that user input can break; formats the message only on failure.
#define UG_CHECK(cond, ...)            \
  do {                                 \
    if (!(cond)) ::ug::fail(__VA_ARGS__); \
  } while (0)
