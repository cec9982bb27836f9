#pragma once
/// \file
/// \brief The project's error type and the `main` wrapper every chapter uses.

#include <functional>
#include <stdexcept>
#include <string>

namespace lab {

/// Every error the project raises on purpose: bad input, bad flags, files that do not parse.
/// The message is one line, written for the person who ran the program.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Raised when a CUDA chapter runs on a machine without a usable GPU.
class NoDeviceError : public Error {
 public:
  using Error::Error;
};

/// Exit status a chapter returns when it needs a GPU and none is there (the "skipped" code of
/// CTest and of the GNU test drivers).
inline constexpr int kExitNoDevice = 77;

/// Throws lab::Error with `message` when `condition` is false.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

/// Runs a chapter's body and turns every exception into one line on stderr and a non-zero exit,
/// so that no bad input ever ends in a crash or a stack trace.
int run_main(const std::string& program, const std::function<int()>& body);

}  // namespace lab
