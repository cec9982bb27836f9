#pragma once
// Runs a chapter executable the way a student would, for end-to-end chapter tests.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

struct ProgramResult {
  int exit_code = -1;      // the exit status, or 128 + the signal that ended the program
  std::string out;         // stdout
  std::string err;         // stderr
  bool timed_out = false;  // killed by the test after its time limit
  int signal = 0;          // the signal that ended the program, 0 when it exited by itself
};

/// Path of a chapter executable in the build tree (ctest sets LAB_BIN_DIR).
inline std::string program_path(const std::string& name) {
  const char* dir = std::getenv("LAB_BIN_DIR");
  return std::string(dir ? dir : LAB_BINARY_DIR "/bin") + "/" + name;
}

/// True when the chapter was built here (CUDA chapters exist only where nvcc was found).
inline bool program_exists(const std::string& name) {
  return ::access(program_path(name).c_str(), X_OK) == 0;
}

/// Runs `bin/<name> <args>` from the build tree (ctest sets LAB_BIN_DIR) and captures both streams.
inline ProgramResult run_program(const std::string& name, const std::string& args) {
  const std::string bin = program_path(name);
  const auto err_path = std::filesystem::temp_directory_path() /
                        ("lab_stderr_" + std::to_string(::getpid()) + "_" + name + ".txt");
  const std::string command = "'" + bin + "' " + args + " 2>'" + err_path.string() + "'";
  ProgramResult r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    r.out.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream err(err_path);
  std::stringstream ss;
  ss << err.rdbuf();
  r.err = ss.str();
  std::filesystem::remove(err_path);
  return r;
}

/// Number of lines in `text` (a final line without newline counts).
inline int line_count(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n + (!text.empty() && text.back() != '\n');
}

/// A chapter running in the background, started with fork/exec (no shell: arguments go as they
/// are), its stdout and stderr read through pipes. A test can wait for some output, then send it a
/// signal as a terminal would (Ctrl-C is SIGINT), and collect the result. The destructor kills and
/// reaps a program still running, so a failing test leaves nothing behind.
class RunningProgram {
 public:
  /// Starts bin/<name> with `args`; `env` entries ("NAME=value") replace or add to the test's
  /// environment (e.g. "CUDA_VISIBLE_DEVICES=" hides every GPU).
  RunningProgram(const std::string& name, const std::vector<std::string>& args,
                 const std::vector<std::string>& env = {}) {
    const std::string bin = program_path(name);
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> argv_strings{bin};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      const std::string entry(*e);
      const std::string key = entry.substr(0, entry.find('='));
      bool replaced = false;
      for (const auto& mine : env) replaced = replaced || mine.substr(0, mine.find('=')) == key;
      if (!replaced) env_strings.push_back(entry);
    }
    env_strings.insert(env_strings.end(), env.begin(), env.end());
    std::vector<char*> argv, envp;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    int out_pipe[2], err_pipe[2];
    if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out_pipe[1], STDOUT_FILENO);
      ::dup2(err_pipe[1], STDERR_FILENO);
      ::close(out_pipe[0]), ::close(out_pipe[1]), ::close(err_pipe[0]), ::close(err_pipe[1]);
      ::signal(SIGINT, SIG_DFL);  // a test runner may have started us with SIGINT ignored
      ::execve(bin.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out_pipe[1]), ::close(err_pipe[1]);
    out_fd_ = out_pipe[0], err_fd_ = err_pipe[0];
    if (pid_ < 0) close_pipes();
  }
  ~RunningProgram() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    close_pipes();
  }
  RunningProgram(const RunningProgram&) = delete;
  RunningProgram& operator=(const RunningProgram&) = delete;

  bool started() const { return pid_ > 0; }
  const std::string& out() const { return result_.out; }
  const std::string& err() const { return result_.err; }

  /// The deadline `seconds` from now, stretched by LAB_TEST_TIMEOUT_FACTOR when set: under
  /// compute-sanitizer (scripts/gpu_sanitize.sh) the spawned chapter runs instrumented too, several
  /// times slower, and a deadline sized for a plain run would kill it.
  static std::chrono::steady_clock::time_point deadline_in(double seconds) {
    const char* factor = std::getenv("LAB_TEST_TIMEOUT_FACTOR");
    const double f = factor != nullptr ? std::max(1.0, std::atof(factor)) : 1.0;
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>(seconds * f));
  }

  /// Reads output until `done(stdout)` is true, both streams close, or `seconds` pass. Returns
  /// whether `done` became true.
  template <typename Done>
  bool wait_until(Done done, double seconds) {
    const auto deadline = deadline_in(seconds);
    while (!done(result_.out)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) return done(result_.out);
    }
    return true;
  }
  /// Waits until stderr contains `text`.
  bool wait_for_stderr(const std::string& text, double seconds) {
    const auto deadline = deadline_in(seconds);
    while (result_.err.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) break;
    }
    return result_.err.find(text) != std::string::npos;
  }
  /// Waits until stdout contains `text`.
  bool wait_for_output(const std::string& text, double seconds) {
    return wait_until([&](const std::string& out) { return out.find(text) != std::string::npos; },
                      seconds);
  }

  /// Sends `signal` (SIGINT is what Ctrl-C sends).
  void send(int signal) const {
    if (pid_ > 0 && !exited_) ::kill(pid_, signal);
  }

  /// Reads everything until the program exits; kills it (SIGKILL, timed_out) after `seconds`.
  ProgramResult finish(double seconds) {
    const auto deadline = deadline_in(seconds);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        result_.timed_out = true;
        ::kill(pid_, SIGKILL);
        break;
      }
      if (!read_some(static_cast<int>(left.count()))) break;  // both streams closed
    }
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, 0) == pid_) {
      exited_ = true;
      result_.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      result_.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    close_pipes();
    return result_;
  }

 private:
  // One poll over both pipes, appending what arrived. False once both are closed (or on error).
  bool read_some(int timeout_ms) {
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    if (out_fd_ < 0 && err_fd_ < 0) return false;
    const int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0) return errno == EINTR;
    std::array<char, 4096> buffer{};
    int* fd_of[2] = {&out_fd_, &err_fd_};
    std::string* text_of[2] = {&result_.out, &result_.err};
    for (int i = 0; i < 2; ++i) {
      if (*fd_of[i] < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(*fd_of[i], buffer.data(), buffer.size());
      if (n > 0) {
        text_of[i]->append(buffer.data(), static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(*fd_of[i]);
        *fd_of[i] = -1;
      }
    }
    return out_fd_ >= 0 || err_fd_ >= 0;
  }
  void close_pipes() {
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
    out_fd_ = err_fd_ = -1;
  }

  pid_t pid_ = -1;
  bool exited_ = false;
  int out_fd_ = -1, err_fd_ = -1;
  ProgramResult result_;
};

/// Runs bin/<name> with `args` (no shell: each is one argument, as it is) and extra environment
/// `env`, to completion or until `seconds` pass.
inline ProgramResult run_program_with(const std::string& name, const std::vector<std::string>& args,
                                      const std::vector<std::string>& env = {},
                                      double seconds = 120) {
  RunningProgram program(name, args, env);
  return program.finish(seconds);
}
