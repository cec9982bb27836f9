#pragma once
/// \file
/// \brief Command-line options shared by every chapter, built on CLI11.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace lab {

/// Flags every chapter understands.
struct CommonOptions {
  std::uint64_t seed = 1234;   ///< --seed: random weights, sampling and inputs
  std::string json_path;       ///< --json PATH: write the results as JSON ("-" = stdout)
  bool doc = false;            ///< --doc: deterministic output for the textbook (no timings)
  std::string model = "tiny";  ///< --model: preset name, GGUF file or HF directory
  int threads = 0;             ///< --threads: CPU threads (0 = all cores)
};

/// Adds --seed, --json, --doc, --model and --threads to `app`.
void add_common_options(CLI::App& app, CommonOptions& options);

/// Parses the command line. Returns an exit code when the program should stop now (help was
/// printed: 0; a bad flag: one line "prog: error: --flag: reason" on stderr and CLI11's code).
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv);

/// Writes `value` as pretty JSON to `path` ("-" = stdout); throws lab::Error when it cannot.
void write_json(const std::string& path, const nlohmann::json& value);

}  // namespace lab
