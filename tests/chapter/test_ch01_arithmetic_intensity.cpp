// Chapter 1 end to end: the program prints the seed's numbers and rejects bad flags in one line.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "program.hpp"

TEST(Ch01, PrintsTheSeedsNumbers) {
  const auto r = run_program("ch01_arithmetic_intensity", "--doc");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* expected :
       {"90,177,536", "90,207,744", "0.9997 FLOP/byte", "295.2 FLOP/byte", "memory-bound",
        "524,288 B = 512.0 KiB", "23,040 B", "crossover: from B = 328"})
    EXPECT_NE(r.out.find(expected), std::string::npos) << "missing '" << expected << "' in\n"
                                                       << r.out;
  // The seed's sweep, one decimal: B = 16 -> 15.9, 64 -> 62.7, 256 -> 235.8, 512 -> 437.0.
  for (const char* expected : {" 15.9 ", " 62.7 ", " 235.8 ", " 437.0 "})
    EXPECT_NE(r.out.find(expected), std::string::npos) << expected;
}

TEST(Ch01, JsonHasTheSweepAndThePhases) {
  const std::string path = ::testing::TempDir() + "ch01.json";
  const auto r = run_program("ch01_arithmetic_intensity", "--batch 1 2 4 --json " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(path);
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["sweep"].size(), 3u);
  EXPECT_EQ(j["sweep"][2]["batch"], 4);
  EXPECT_EQ(j["phases"][0]["name"], "prefill");
  EXPECT_EQ(j["phases"][1]["name"], "decode");
  EXPECT_NEAR(j["hardware"]["ridge"].get<double>(), 295.22, 0.01);
}

TEST(Ch01, OtherHardwareAndDtypes) {
  const auto r = run_program(
      "ch01_arithmetic_intensity",
      "--hardware custom --peak-tflops 100 --bandwidth-tbs 1 --dtype fp32 -D 64 -F 64 --batch 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ridge point    = 100 TFLOP/s / 1.00 TB/s = 100.0 FLOP/byte"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("crossover: never"), std::string::npos) << r.out;
}

TEST(Ch01, BadFlagsGiveOneLineNamingTheFlag) {
  const std::pair<const char*, const char*> cases[] = {{"--batch -3", "--batch"},
                                                       {"--dtype fp17", "--dtype"},
                                                       {"--hardware tpu", "--hardware"},
                                                       {"--model gpt-5", "--model"},
                                                       {"-D 0", "--hidden"},
                                                       {"--hardware custom", "--hardware custom"},
                                                       {"--no-such-flag", "--no-such-flag"}};
  for (const auto& [args, flag] : cases) {
    const auto r = run_program("ch01_arithmetic_intensity", args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_EQ(line_count(r.err), 1) << args << ": " << r.err;
    EXPECT_NE(r.err.find(flag), std::string::npos) << args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args;
  }
}
