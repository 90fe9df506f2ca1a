#include "runtime/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace ug {
namespace {

struct Streamed {
  std::string text;  // everything emitted, flush included
  bool stopped = false;
};

// Feeds the chunks in order, then flushes, collecting all emitted text.
Streamed stream(const std::vector<std::string>& stops, const std::vector<std::string>& chunks) {
  StopMatcher matcher(stops);
  Streamed out;
  for (const std::string& chunk : chunks) {
    StopMatcher::Result r = matcher.push(chunk);
    out.text += r.emit;
    out.stopped = r.stopped;
  }
  out.text += matcher.flush();
  return out;
}

std::vector<std::string> bytes_of(const std::string& text) {
  std::vector<std::string> out;
  for (char c : text) out.push_back(std::string(1, c));
  return out;
}

TEST(StopMatcher, HoldsBackOnlyAPossibleStopPrefix) {
  StopMatcher m({"END"});
  StopMatcher::Result r = m.push("hello E");
  EXPECT_EQ(r.emit, "hello ");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(m.held_bytes(), 1u);
  r = m.push("N");
  EXPECT_EQ(r.emit, "");
  EXPECT_EQ(m.held_bytes(), 2u);
  r = m.push("D and more");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(m.matched_stop(), 0u);
  EXPECT_EQ(m.flush(), "");
  // Once stopped, later text is dropped.
  r = m.push("more");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, ReleasesAFalsePrefix) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("ST").emit, "");
  StopMatcher::Result r = m.push("AR");
  EXPECT_EQ(r.emit, "STAR");
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(m.held_bytes(), 0u);
  // Text that cannot start a stop is never held.
  EXPECT_EQ(m.push("hello").emit, "hello");
  // The shortest tail is held: "xxab" -> only "ab" could start "abc".
  StopMatcher abc({"abc"});
  EXPECT_EQ(abc.push("xxab").emit, "xx");
  EXPECT_EQ(abc.held_bytes(), 2u);
}

TEST(StopMatcher, StopAcrossEveryChunkBoundary) {
  const std::string text = "abcSTOPdef";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    for (size_t cut2 = cut; cut2 <= text.size(); ++cut2) {
      const Streamed s =
          stream({"STOP"}, {text.substr(0, cut), text.substr(cut, cut2 - cut), text.substr(cut2)});
      EXPECT_EQ(s.text, "abc") << cut << "," << cut2;
      EXPECT_TRUE(s.stopped);
    }
  }
  EXPECT_EQ(stream({"STOP"}, bytes_of(text)).text, "abc");
}

TEST(StopMatcher, OverlappingPrefixes) {
  // "ab" completes first; "abc" sharing its prefix changes nothing.
  for (const auto& chunks : {std::vector<std::string>{"xaab"}, bytes_of("xaabc"),
                             std::vector<std::string>{"xa", "ab", "c"}}) {
    const Streamed s = stream({"ab", "abc"}, chunks);
    EXPECT_EQ(s.text, "xa");
    EXPECT_TRUE(s.stopped);
  }
  // A stop that overlaps itself: after "aaa" only "aa" may still start "aab".
  StopMatcher m({"aab"});
  EXPECT_EQ(m.push("a").emit, "");
  EXPECT_EQ(m.push("a").emit, "");
  EXPECT_EQ(m.push("a").emit, "a");
  StopMatcher::Result r = m.push("b");
  EXPECT_EQ(r.emit, "");
  EXPECT_TRUE(r.stopped);
}

TEST(StopMatcher, MultipleStopsFirstToEndWins) {
  StopMatcher m({"abcd", "bc"});
  StopMatcher::Result r = m.push("xabcd");
  EXPECT_EQ(r.emit, "xa");
  EXPECT_EQ(m.matched_stop(), 1u);
  // Same end: the one that starts first wins.
  StopMatcher tie({"b", "ab"});
  EXPECT_EQ(tie.push("xab").emit, "x");
  EXPECT_EQ(tie.matched_stop(), 1u);
  // Different stops, the second one appears.
  const Streamed s = stream({"<eos>", "\n\n"}, {"line one\n", "\nline two<eos>"});
  EXPECT_EQ(s.text, "line one");
  EXPECT_TRUE(s.stopped);
}

TEST(StopMatcher, FlushReturnsHeldTailWhenNoStop) {
  StopMatcher m({"STOP", "</s>"});
  EXPECT_EQ(m.push("hello ST").emit, "hello ");
  EXPECT_EQ(m.push("O").emit, "");
  EXPECT_EQ(m.flush(), "STO");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(stream({"STOP"}, {"a", "b<", "/s"}).text, "ab</s");
  EXPECT_EQ(stream({"</s>"}, {"a", "b<", "/s"}).text, "ab</s");
}

TEST(StopMatcher, Utf8StopsSplitAcrossChunks) {
  // "€" is E2 82 AC; a stop made of it matches byte by byte across pushes.
  const Streamed s = stream({"€"}, {"price 5\xE2", "\x82", "\xAC and more"});
  EXPECT_EQ(s.text, "price 5");
  EXPECT_TRUE(s.stopped);
  // A different character sharing the lead byte is released intact.
  StopMatcher m({"€"});
  EXPECT_EQ(m.push("a\xE2").emit, "a");
  EXPECT_EQ(m.push("\x80\x94").emit, "\xE2\x80\x94");  // em dash
  EXPECT_EQ(stream({"終わり"}, bytes_of("これで終わりです")).text, "これで");
}

TEST(StopMatcher, EmptyListNeverStops) {
  StopMatcher m({});
  EXPECT_EQ(m.push("anything").emit, "anything");
  EXPECT_EQ(m.push("").emit, "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, RejectsEmptyStop) {
  try {
    StopMatcher m({"ok", ""});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("entry 1 is empty"), std::string::npos) << e.what();
  }
}

// Reference: scan prefixes of the whole text; the first prefix that ends with a stop decides.
Streamed reference(const std::vector<std::string>& stops, const std::string& text) {
  for (size_t end = 1; end <= text.size(); ++end) {
    size_t best = std::string::npos;
    for (const std::string& stop : stops) {
      if (stop.size() <= end && text.compare(end - stop.size(), stop.size(), stop) == 0) {
        best = std::min(best, end - stop.size());
      }
    }
    if (best != std::string::npos) return {text.substr(0, best), true};
  }
  return {text, false};
}

TEST(StopMatcher, AnyChunkingMatchesReference) {
  const std::vector<std::string> stops = {"abc", "bca", "cc", "aab", "babab"};
  std::mt19937 gen(17);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int len = int(gen() % 24);
    for (int i = 0; i < len; ++i) text += char('a' + gen() % 3);
    std::vector<std::string> chunks;
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = std::min<size_t>(text.size() - pos, gen() % 5);  // empty chunks too
      chunks.push_back(text.substr(pos, n));
      pos += n;
    }
    const Streamed want = reference(stops, text);
    const Streamed got = stream(stops, chunks);
    ASSERT_EQ(got.text, want.text) << "text " << text;
    ASSERT_EQ(got.stopped, want.stopped) << "text " << text;
  }
}

}  // namespace
}  // namespace ug
