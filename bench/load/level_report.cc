#include "load/level_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ug::load {

using nlohmann::json;

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const double pos = q * double(v.size() - 1);
    const size_t lo = size_t(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
  };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  for (double x : v) p.mean += x;
  p.mean /= double(v.size());
  p.max = v.back();
  p.n = int64_t(v.size());
  return p;
}

LevelSummary summarize(int64_t concurrency, const std::vector<RequestResult>& results,
                       double wall_s) {
  LevelSummary s;
  s.concurrency = concurrency;
  s.wall_s = wall_s;
  std::vector<double> ttft, itl, tpot, e2e, stream_speed;
  int64_t prompt = 0, cached = 0, completion = 0;
  for (const RequestResult& r : results) {
    switch (r.outcome) {
      case Outcome::Cancelled:
        ++s.cancelled;
        continue;
      case Outcome::Rejected:
        ++s.rejected;
        continue;
      case Outcome::Error:
        ++s.errors;
        if (s.error_samples.size() < 3 && std::find(s.error_samples.begin(), s.error_samples.end(),
                                                    r.error) == s.error_samples.end())
          s.error_samples.push_back(r.error);
        continue;
      case Outcome::Ok:
        break;
    }
    ++s.ok;
    prompt += r.prompt_tokens;
    cached += r.cached_tokens;
    completion += r.completion_tokens;
    ttft.push_back(r.ttft_s);
    e2e.push_back(r.e2e_s);
    itl.insert(itl.end(), r.itl_s.begin(), r.itl_s.end());
    if (r.completion_tokens > 1 && r.e2e_s > r.ttft_s) {
      tpot.push_back((r.e2e_s - r.ttft_s) / double(r.completion_tokens - 1));
      stream_speed.push_back(double(r.completion_tokens - 1) / (r.e2e_s - r.ttft_s));
    }
  }
  if (s.ok > 0) {
    s.prompt_tokens_mean = double(prompt) / double(s.ok);
    s.completion_tokens_mean = double(completion) / double(s.ok);
  }
  s.cached_fraction = prompt > 0 ? double(cached) / double(prompt) : 0;
  if (wall_s > 0) {
    s.requests_per_s = double(s.ok) / wall_s;
    s.output_tokens_per_s = double(completion) / wall_s;
  }
  s.ttft_s = percentiles(ttft);
  s.itl_s = percentiles(itl);
  s.tpot_s = percentiles(tpot);
  s.e2e_s = percentiles(e2e);
  s.stream_tokens_per_s = percentiles(stream_speed).p50;
  return s;
}

std::string table_header() {
  return fmt::format(
      "{:>5} {:>6} {:>5} {:>5} {:>6} {:>7} {:>8} {:>7} | {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7} | "
      "{:>7} {:>7} | {:>6} {:>6}\n",
      "conc", "ok", "err", "canc", "rej", "req/s", "out t/s", "strm t/s", "TTFT p50", "p90", "p99",
      "ITL p50", "p90", "p99", "E2E p50", "p99", "prompt", "cached");
}

std::string table_row(const LevelSummary& s) {
  auto ms = [](double sec) { return sec * 1e3; };
  return fmt::format(
      "{:>5} {:>6} {:>5} {:>5} {:>6} {:>7.2f} {:>8.1f} {:>7.1f} | {:>8.0f} {:>8.0f} {:>8.0f} | "
      "{:>7.1f} {:>7.1f} {:>7.1f} | {:>7.2f} {:>7.2f} | {:>6.0f} {:>5.0f}%\n",
      s.concurrency, s.ok, s.errors, s.cancelled, s.rejected, s.requests_per_s,
      s.output_tokens_per_s, s.stream_tokens_per_s, ms(s.ttft_s.p50), ms(s.ttft_s.p90),
      ms(s.ttft_s.p99), ms(s.itl_s.p50), ms(s.itl_s.p90), ms(s.itl_s.p99), s.e2e_s.p50, s.e2e_s.p99,
      s.prompt_tokens_mean, 100 * s.cached_fraction);
}

namespace {
json to_json(const Percentiles& p, double scale) {
  return {{"p50", p.p50 * scale},   {"p90", p.p90 * scale}, {"p99", p.p99 * scale},
          {"mean", p.mean * scale}, {"max", p.max * scale}, {"n", p.n}};
}
}  // namespace

json to_json(const LevelSummary& s) {
  return {{"concurrency", s.concurrency},
          {"ok", s.ok},
          {"errors", s.errors},
          {"error_samples", s.error_samples},
          {"cancelled", s.cancelled},
          {"rejected", s.rejected},
          {"wall_s", s.wall_s},
          {"requests_per_s", s.requests_per_s},
          {"output_tokens_per_s", s.output_tokens_per_s},
          {"stream_tokens_per_s_p50", s.stream_tokens_per_s},
          {"prompt_tokens_mean", s.prompt_tokens_mean},
          {"completion_tokens_mean", s.completion_tokens_mean},
          {"cached_prompt_fraction", s.cached_fraction},
          {"ttft_ms", to_json(s.ttft_s, 1e3)},
          {"itl_ms", to_json(s.itl_s, 1e3)},
          {"tpot_ms", to_json(s.tpot_s, 1e3)},
          {"e2e_s", to_json(s.e2e_s, 1)}};
}

}  // namespace ug::load
