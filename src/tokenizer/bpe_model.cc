#include "tokenizer/bpe_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <queue>
#include <string>
#include <thread>

#include "core/error.h"
#include "tokenizer/bpe_utf8.h"

namespace ug::bpe {
namespace {

using json = nlohmann::json;

std::string json_quote(std::string_view s) { return json(std::string(s)).dump(); }

bool optional_bool(const json& model, const char* key, std::string_view source) {
  auto it = model.find(key);
  if (it == model.end() || it->is_null()) return false;
  UG_CHECK(it->is_boolean(), "{}: model.{}: expected true or false, got {}", source, key,
           it->dump());
  return it->get<bool>();
}

// A pending merge candidate; the heap pops the lowest rank, then the leftmost position (HF's Merge
// ordering).
struct Candidate {
  uint32_t rank;
  int32_t pos;
  int32_t result;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

}  // namespace

BpeModel::BpeModel(const RawTokenizerJson& raw, std::shared_ptr<const Vocab> vocab,
                   std::string_view source)
    : vocab_(std::move(vocab)) {
  read_options(raw.rest.at("model"), source);
  resolve_merges(raw, source);
}

void BpeModel::read_options(const json& model, std::string_view source) {
  if (auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
    UG_CHECK(it->is_number() && it->get<double>() == 0.0,
             "{}: model.dropout: BPE dropout is not supported (expected null), got {}", source,
             it->dump());
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it == model.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty()))
      continue;
    fail("{}: model.{}: not supported (expected null), got {}", source, key, it->dump());
  }
  byte_fallback_ = optional_bool(model, "byte_fallback", source);
  fuse_unk_ = optional_bool(model, "fuse_unk", source);
  ignore_merges_ = optional_bool(model, "ignore_merges", source);
  if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
    UG_CHECK(it->is_string(), "{}: model.unk_token: expected a string or null, got {}", source,
             it->dump());
    auto id = vocab_->find_model(it->get<std::string>());
    UG_CHECK(id.has_value(), "{}: model.unk_token {} is not in model.vocab", source, it->dump());
    unk_id_ = *id;
  }
  for (int b = 0; b < 256; ++b) {
    auto id = vocab_->find_model(fmt::format("<0x{:02X}>", b));
    byte_ids_[size_t(b)] = id ? *id : -1;
  }
}

// Operand and result ids of merges [begin, end); -1 where a piece is missing.
void BpeModel::lookup_merges(const RawTokenizerJson& raw, size_t begin, size_t end,
                             std::vector<ResolvedMerge>& out) const {
  std::string joined;
  for (size_t rank = begin; rank < end; ++rank) {
    std::string_view left = raw.merge_part(raw.merges[rank].left);
    std::string_view right = raw.merge_part(raw.merges[rank].right);
    ResolvedMerge& r = out[rank];
    r.a = vocab_->find_model(left).value_or(-1);
    r.b = vocab_->find_model(right).value_or(-1);
    joined.assign(left);
    joined.append(right);
    r.result = vocab_->find_model(joined).value_or(-1);
  }
}

void BpeModel::resolve_merges(const RawTokenizerJson& raw, std::string_view source) {
  const size_t n = raw.merges.size();
  std::vector<ResolvedMerge> resolved(n);
  // The ~1.5M hash lookups are memory-bound; spread them over a few private threads (not the
  // global pool, which another thread may be using while the tokenizer loads).
  const size_t n_threads =
      n < 65536 ? 1 : std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n_threads; ++t)
    threads.emplace_back(
        [&, t] { lookup_merges(raw, n * t / n_threads, n * (t + 1) / n_threads, resolved); });
  lookup_merges(raw, 0, n / n_threads, resolved);
  for (std::thread& th : threads) th.join();

  merges_.reserve(n);
  for (size_t rank = 0; rank < n; ++rank) {
    const ResolvedMerge& r = resolved[rank];
    if (r.a < 0 || r.b < 0 || r.result < 0) {
      std::string_view left = raw.merge_part(raw.merges[rank].left);
      std::string_view right = raw.merge_part(raw.merges[rank].right);
      if (r.a < 0 || r.b < 0)
        fail("{}: model.merges[{}]: {} is not in model.vocab", source, rank,
             json_quote(r.a < 0 ? left : right));
      fail("{}: model.merges[{}]: merge result {} is not in model.vocab", source, rank,
           json_quote(std::string(left) + std::string(right)));
    }
    merges_.insert_or_assign(r.a, r.b, Merge{uint32_t(rank), r.result});
  }
}

// One symbol per Unicode scalar; unknown scalars become byte tokens or (fused) unk, exactly in HF's
// order: a pending unk is only written when a known scalar or the end of the word follows.
void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& symbols) const {
  bool unk_pending = false;
  size_t pos = 0;
  while (pos < word.size()) {
    size_t len = utf8_sequence_length(word, pos);
    if (len == 0) len = 1;  // callers validate; never loop forever on bad input
    std::string_view ch = word.substr(pos, len);
    pos += len;
    if (auto id = vocab_->find_model(ch)) {
      if (unk_pending) symbols.push_back(unk_id_);
      unk_pending = false;
      symbols.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[uint8_t(c)] >= 0;
      if (all) {
        for (char c : ch) symbols.push_back(byte_ids_[uint8_t(c)]);
        continue;
      }
    }
    if (unk_id_ < 0) continue;  // no unk token: HF drops the scalar
    if (unk_pending && !fuse_unk_) symbols.push_back(unk_id_);
    unk_pending = true;
  }
  if (unk_pending) symbols.push_back(unk_id_);
}

void BpeModel::merge_all(std::vector<int32_t>& c) const {
  const int32_t n = int32_t(c.size());
  if (n < 2) return;
  std::vector<int32_t> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    prev[size_t(i)] = i - 1;
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
  }
  std::vector<Candidate> storage;
  storage.reserve(size_t(n));
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap(std::greater<>{},
                                                                              std::move(storage));
  auto push = [&](int32_t p) {
    int32_t q = next[size_t(p)];
    if (q < 0) return;
    if (const Merge* m = merges_.find(c[size_t(p)], c[size_t(q)]))
      heap.push(Candidate{m->rank, p, m->result});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Candidate top = heap.top();
    heap.pop();
    const size_t p = size_t(top.pos);
    if (c[p] < 0 || next[p] < 0) continue;  // symbol merged away, or nothing to its right
    const size_t q = size_t(next[p]);
    const Merge* m = merges_.find(c[p], c[q]);
    if (m == nullptr || m->result != top.result) continue;  // stale candidate
    c[p] = top.result;
    c[q] = -1;
    next[p] = next[q];
    if (next[p] >= 0) prev[size_t(next[p])] = top.pos;
    if (prev[p] >= 0) push(prev[p]);
    push(top.pos);
  }
  size_t w = 0;
  for (size_t i = 0; i < c.size(); ++i)
    if (c[i] >= 0) c[w++] = c[i];
  c.resize(w);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = vocab_->find_model(word)) {
      out.push_back(*id);
      return;
    }
  }
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  initial_symbols(word, symbols);
  merge_all(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

}  // namespace ug::bpe
