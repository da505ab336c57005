#include <gtest/gtest.h>

#include <thread>

#include "kiln/timing_cache.h"
#include "kiln/types.h"

namespace kiln {
namespace {

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    TimingCache c(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TimingCache, RoundTripsRecords) {
  TimingCache c;
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.find("a"));
  c.record("a", "1");
  c.record("b", std::string("\0\xff", 2));
  TimingCache back(c.serialize());
  EXPECT_EQ(back.size(), 2u);
  EXPECT_EQ(back.find("a"), "1");
  EXPECT_EQ(back.find("b"), std::string("\0\xff", 2));
  EXPECT_EQ(back.serialize(), c.serialize());
  EXPECT_EQ(TimingCache(std::vector<uint8_t>{}).size(), 0u);
}

TEST(TimingCache, FirstRecordOfAKeyStays) {
  TimingCache c;
  c.record("k", "first");
  c.record("k", "second");
  EXPECT_EQ(c.find("k"), "first");
}

TEST(TimingCache, ReplaceOverwritesAndChecksSizes) {
  TimingCache c;
  c.record("k", "first");
  c.replace("k", "second");
  EXPECT_EQ(c.find("k"), "second");
  c.replace("new", "x");
  EXPECT_EQ(c.find("new"), "x");
  EXPECT_EQ(c.size(), 2u);
  EXPECT_THROW(c.replace("k", std::string((1 << 16) + 1, 'x')), Error);
  EXPECT_EQ(c.find("k"), "second") << "a refused record leaves the old one";
}

TEST(TimingCache, CombineAddsMissingKeysAndResetEmpties) {
  TimingCache a, b;
  a.record("x", "a");
  b.record("x", "b");
  b.record("y", "b");
  a.combine(b);
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(a.find("x"), "a");
  EXPECT_EQ(a.find("y"), "b");
  a.combine(a);
  EXPECT_EQ(a.size(), 2u);
  a.reset();
  EXPECT_EQ(a.size(), 0u);
}

TEST(TimingCache, FallbackRecordsAreCopiedWhenUsed) {
  auto seed = std::make_shared<TimingCache>();
  seed->record("used", "1");
  seed->record("unused", "2");
  TimingCache plan;
  plan.set_fallback(seed);
  EXPECT_EQ(plan.find("used"), "1");
  EXPECT_FALSE(plan.find("absent"));
  plan.set_fallback(nullptr);
  EXPECT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan.find("used"), "1");
  EXPECT_FALSE(plan.find("unused"));
}

TEST(TimingCache, RejectsCorruptBytesWithAReason) {
  TimingCache c;
  c.record("key", "tactic");
  std::vector<uint8_t> good = c.serialize();
  EXPECT_NE(error_of({'n', 'o', 'p', 'e', 0}).find("not a Kiln timing cache"), std::string::npos);
  auto bad_version = good;
  bad_version[4] = 9;
  EXPECT_NE(error_of(bad_version).find("format version 9"), std::string::npos);
  auto truncated = good;
  truncated.pop_back();
  EXPECT_NE(error_of(truncated).find("truncated"), std::string::npos);
  auto trailing = good;
  trailing.push_back(0);
  EXPECT_NE(error_of(trailing).find("trailing"), std::string::npos);
  auto huge_key = good;
  huge_key[12] = 0xff;  // the first key length's low byte... and its high byte below: > 4096
  huge_key[15] = 0x7f;
  EXPECT_NE(error_of(huge_key).find("corrupt"), std::string::npos);
  TimingCache twice;
  twice.record("k", "v");
  auto dup = twice.serialize();
  dup[8] = 2;  // count 2, then the same record again
  std::vector<uint8_t> rec(dup.begin() + 12, dup.end());
  dup.insert(dup.end(), rec.begin(), rec.end());
  EXPECT_NE(error_of(dup).find("repeats a key"), std::string::npos);
}

TEST(TimingCache, ConcurrentRecordsAndLookupsAreSafe) {
  TimingCache c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&c, t] {
      for (int i = 0; i < 500; ++i) {
        c.record("k" + std::to_string(i), std::to_string(t));
        EXPECT_TRUE(c.find("k" + std::to_string(i)));
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.size(), 500u);
}

}  // namespace
}  // namespace kiln
