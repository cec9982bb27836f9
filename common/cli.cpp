#include "common/cli.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>

#include "common/error.hpp"
#include "common/model_config.hpp"

namespace lab {

namespace {
std::string model_help() {
  std::string presets = "smollm2";
  for (const std::string& name : preset_names()) presets += ", " + name;
  return "Model: a preset (" + presets + "), a GGUF file or an HF directory";
}
}  // namespace

void add_common_options(CLI::App& app, CommonOptions& o) {
  app.add_option("--seed", o.seed, "Seed for random weights, inputs and sampling")
      ->capture_default_str();
  app.add_option("--json", o.json_path, "Write results as JSON to this file ('-' for stdout)");
  app.add_flag("--doc", o.doc, "Deterministic output for the textbook: fixed seed, no timings");
  app.add_option("--model", o.model, model_help())->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0 = all cores)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
}

std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, naming the flag (CLI11's message starts with it), then a non-zero exit.
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
    return e.get_exit_code() != 0 ? e.get_exit_code() : 2;
  }
  return std::nullopt;
}

void write_json(const std::string& path, const nlohmann::json& value) {
  if (path == "-") {
    std::cout << value.dump(2) << '\n';
    return;
  }
  std::ofstream out(path);
  if (!out) throw Error("--json: cannot open '" + path + "' for writing");
  out << value.dump(2) << '\n';
  if (!out) throw Error("--json: failed writing '" + path + "'");
}

}  // namespace lab
