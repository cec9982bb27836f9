// Chapter 5's executable: reproducible sampling by seed, clear errors for invalid sampler settings.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

struct Result {
  int rc = -1;
  std::string output;
};

Result run_chapter(const std::string& name, const std::string& args) {
  const char* dir = std::getenv("LAB_BIN_DIR");
  const std::string bin = std::string(dir ? dir : LAB_BINARY_DIR "/bin") + "/" + name;
  Result r;
  FILE* pipe = popen((bin + " " + args + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) r.output += buffer;
  const int status = pclose(pipe);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const char* kCh05 = "ch05_sampling_and_metrics";

TEST(Ch05Sampling, SameSeedSameTextOtherSeedOtherText) {
  const Result a = run_chapter(kCh05, "--doc --seed 5"), b = run_chapter(kCh05, "--doc --seed 5");
  const Result c = run_chapter(kCh05, "--doc --seed 6");
  ASSERT_EQ(a.rc, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_NE(a.output, c.output);
  EXPECT_NE(a.output.find("identical tokens"), std::string::npos);
}

TEST(Ch05Sampling, InvalidSettingsNameTheFlag) {
  const std::pair<const char*, const char*> cases[] = {
      {"--top-p 0", "--top-p"},  {"--top-p 1.5", "--top-p"},
      {"--top-k -1", "--top-k"}, {"--temperature -0.1", "--temperature"},
      {"--min-p 2", "--min-p"},  {"--repetition-penalty 0", "--repetition-penalty"},
      {"--steps 0", "--steps"},  {"--temperature abc", "--temperature"}};
  for (const auto& [args, flag] : cases) {
    const Result r = run_chapter(kCh05, args);
    EXPECT_NE(r.rc, 0) << args;
    EXPECT_NE(r.output.find(flag), std::string::npos) << args << ": " << r.output;
  }
}

TEST(Ch05Sampling, EmptyPromptWithoutBosAndEveryChapterDocRuns) {
  // tiny has a BOS, so an empty --prompt still starts from one token; every chapter's --doc runs.
  for (const char* name : {"ch02_teacher_forcing", "ch03_autoregressive", "ch04_kv_cache", kCh05}) {
    const Result r = run_chapter(name, "--doc");
    EXPECT_EQ(r.rc, 0) << name << ": " << r.output;
  }
  const Result r = run_chapter("ch04_kv_cache", "--doc --mask bidirectional");
  EXPECT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(run_chapter("ch04_kv_cache", "--mask sideways").rc, 0);
  const Result small = run_chapter("ch04_kv_cache", "--cache-tokens 4");
  EXPECT_NE(small.rc, 0);
  EXPECT_NE(small.output.find("--cache-tokens"), std::string::npos) << small.output;
}

}  // namespace
