// Chapter 2's executable: deterministic --doc output, its loss against an independent log-softmax
// of the library's logits, and clear errors for bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/model_source.hpp"
#include "cpu_reference/transformer.hpp"

namespace {

struct Result {
  int rc = -1;
  std::string output;  // stdout and stderr together
};

Result run_chapter(const std::string& args) {
  const char* dir = std::getenv("LAB_BIN_DIR");
  const std::string bin = std::string(dir ? dir : LAB_BINARY_DIR "/bin") + "/ch02_teacher_forcing";
  Result r;
  FILE* pipe = popen((bin + " " + args + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) r.output += buffer;
  const int status = pclose(pipe);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(Ch02TeacherForcing, DocOutputIsDeterministicAndPasses) {
  const Result a = run_chapter("--doc"), b = run_chapter("--doc");
  ASSERT_EQ(a.rc, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_NE(a.output.find("PASS"), std::string::npos) << a.output;
  EXPECT_EQ(a.output.find(" ms"), std::string::npos) << "--doc must not print timings";
}

TEST(Ch02TeacherForcing, LossMatchesAnIndependentLogSoftmax) {
  const std::string json = std::string(LAB_BINARY_DIR) + "/ch02_test.json";
  const Result r = run_chapter("--doc --tokens 256,72,101,108,108,111 --json " + json);
  ASSERT_EQ(r.rc, 0) << r.output;
  std::ifstream in(json);
  const nlohmann::json out = nlohmann::json::parse(in);
  // Recompute from the fp64 oracle of the same weights: mean of −log softmax(row i)[token i+1].
  const std::vector<int> ids = {256, 72, 101, 108, 108, 111};
  const lab::LoadedModel m = lab::load_model("tiny", 1234);
  const std::vector<double> logits = lab::cpu::teacher_forced_logits_fp64(m.weights, ids);
  const std::size_t V = 258;
  double loss = 0;
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
    double sum = 0;
    for (std::size_t v = 0; v < V; ++v) sum += std::exp(logits[i * V + v]);
    loss += std::log(sum) - logits[i * V + static_cast<std::size_t>(ids[i + 1])];
  }
  loss /= static_cast<double>(ids.size() - 1);
  // fp32 logits vs fp64: the loss differs by about the logits' own rounding (1e-6 relative).
  EXPECT_NEAR(out["cross_entropy"].get<double>(), loss, 1e-5 * loss);
  EXPECT_NEAR(out["perplexity"].get<double>(), std::exp(loss), 1e-4 * std::exp(loss));
}

TEST(Ch02TeacherForcing, BadInputIsAOneLineErrorAndNonZeroExit) {
  for (const char* args : {"--tokens 1,999", "--tokens 1,x", "--tokens 5", "--text ''", "--top 0",
                           "--model nosuchmodel", "--threads -1"}) {
    const Result r = run_chapter(args);
    EXPECT_NE(r.rc, 0) << args;
    EXPECT_NE(r.output.find("error"), std::string::npos) << args << ": " << r.output;
  }
  EXPECT_NE(run_chapter("--tokens 1,999").output.find("--tokens"), std::string::npos);
}

}  // namespace
