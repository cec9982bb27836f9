#pragma once
// Runs a chapter executable the way a student would, for end-to-end chapter tests.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

struct ProgramResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

/// Runs `bin/<name> <args>` from the build tree (ctest sets LAB_BIN_DIR) and captures both streams.
inline ProgramResult run_program(const std::string& name, const std::string& args) {
  const char* dir = std::getenv("LAB_BIN_DIR");
  const std::string bin = std::string(dir ? dir : LAB_BINARY_DIR "/bin") + "/" + name;
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
