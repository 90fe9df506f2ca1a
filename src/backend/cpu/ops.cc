#include "backend/cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/bf16.h"

namespace ug::cpu {

void rms_norm_to(const float* x, float* out, int64_t rows, int64_t n, const float* w, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = out + r * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
    float inv = float(1.0 / std::sqrt(ss / double(n) + eps));
    if (w) {
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * w[i];
    } else {
      for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv;
    }
  }
}

void layer_norm_to(const float* x, float* out, int64_t rows, int64_t n, const float* w, const float* b,
                   double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = out + r * n;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += xr[i];
    mean /= double(n);
    for (int64_t i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    float inv = float(1.0 / std::sqrt(var / double(n) + eps));
    for (int64_t i = 0; i < n; ++i) yr[i] = float(xr[i] - mean) * inv * w[i] + b[i];
  }
}

void rms_norm(float* x, int64_t rows, int64_t n, const float* w, double eps) {
  rms_norm_to(x, x, rows, n, w, eps);
}

void rope(float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim, std::span<const int64_t> positions,
          std::span<const float> inv_freq) {
  const int64_t half = head_dim / 2;
  std::vector<float> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));
  for (int64_t t = 0; t < n_tokens; ++t) {
    float pos = float(positions[size_t(t)]);
    for (int64_t i = 0; i < half; ++i) {
      float angle = pos * inv_freq[size_t(i)];  // f32 product, as the reference computes it
      cos_t[size_t(i)] = float(std::cos(double(angle)));
      sin_t[size_t(i)] = float(std::sin(double(angle)));
    }
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cos_t[size_t(i)] - x2 * sin_t[size_t(i)];
        v[i + half] = x2 * cos_t[size_t(i)] + x1 * sin_t[size_t(i)];
      }
    }
  }
}

void embedding_row(const MatrixRef& table, int64_t id, float scale, float* out) {
  if (table.dtype == DType::BF16) {
    const auto* row = static_cast<const uint16_t*>(table.data) + id * table.cols;
    for (int64_t i = 0; i < table.cols; ++i) out[i] = bf16_to_f32(row[i]) * scale;
  } else {
    const auto* row = static_cast<const float*>(table.data) + id * table.cols;
    for (int64_t i = 0; i < table.cols; ++i) out[i] = row[i] * scale;
  }
}

namespace {

// Visible key range and rule for query at absolute position qpos.
struct KeyRange {
  int64_t first;  // oldest visible position
  int64_t last;   // newest visible position (>= qpos inside a bidirectional block)
};

KeyRange visible_keys(const AttentionParams& p, int64_t qi) {
  int64_t qpos = p.chunk_start + qi;
  KeyRange r{0, qpos};
  if (p.window > 0) r.first = std::max<int64_t>(0, qpos - p.window + 1);
  if (p.window > 0 && p.block_ids && p.block_ids[qi] >= 0) {
    int64_t j = qi;  // same-block keys after the query (blocks are never split across chunks)
    while (j + 1 < p.n_q && p.block_ids[j + 1] == p.block_ids[qi]) ++j;
    r.last = p.chunk_start + j;
  }
  return r;
}

// Dot product with 8 independent partial sums: lets the compiler vectorize without -ffast-math.
float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

const float* key_row(const AttentionParams& p, const float* cache, const float* chunk, int64_t pos,
                     int64_t kv_head) {
  int64_t stride = p.n_kv_heads * p.head_dim;
  if (pos >= p.chunk_start) return chunk + (pos - p.chunk_start) * stride + kv_head * p.head_dim;
  int64_t slot = p.ring_capacity > 0 ? pos % p.ring_capacity : pos;
  return cache + slot * stride + kv_head * p.head_dim;
}

void attend_one(const AttentionParams& p, int64_t qi, int64_t h, std::vector<float>& scores) {
  const int64_t d = p.head_dim;
  const int64_t kv_head = h / (p.n_heads / p.n_kv_heads);
  const float* q = p.q + (qi * p.n_heads + h) * d;
  float* out = p.out + (qi * p.n_heads + h) * d;
  KeyRange r = visible_keys(p, qi);
  scores.resize(size_t(r.last - r.first + 1));
  float max_s = -INFINITY;
  for (int64_t pos = r.first; pos <= r.last; ++pos) {
    const float* k = key_row(p, p.cache_k, p.chunk_k, pos, kv_head);
    float s = dot(q, k, d) * p.scale;
    scores[size_t(pos - r.first)] = s;
    max_s = std::max(max_s, s);
  }
  double sum = 0;
  for (auto& s : scores) {
    s = std::exp(s - max_s);
    sum += s;
  }
  float inv = float(1.0 / sum);
  std::fill(out, out + d, 0.0f);
  for (int64_t pos = r.first; pos <= r.last; ++pos) {
    const float* v = key_row(p, p.cache_v, p.chunk_v, pos, kv_head);
    float w = scores[size_t(pos - r.first)] * inv;
    for (int64_t i = 0; i < d; ++i) out[i] += w * v[i];
  }
}

}  // namespace

void attention(const AttentionParams& p, ThreadPool& pool) { attention_batch({&p, 1}, pool); }

void attention_batch(std::span<const AttentionParams> calls, ThreadPool& pool) {
  std::vector<int64_t> first(calls.size() + 1, 0);  // first task of each call
  for (size_t i = 0; i < calls.size(); ++i) first[i + 1] = first[i] + calls[i].n_q * calls[i].n_heads;
  pool.parallel_for(first.back(), 4, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    size_t c = size_t(std::upper_bound(first.begin(), first.end(), begin) - first.begin()) - 1;
    for (int64_t task = begin; task < end; ++task) {
      while (task >= first[c + 1]) ++c;
      const AttentionParams& p = calls[c];
      int64_t local = task - first[c];
      attend_one(p, local / p.n_heads, local % p.n_heads, scores);
    }
  });
}

}  // namespace ug::cpu
