// AVX2 + FMA matmul kernels: the same scheme as matmul_avx512.cc with 8-lane vectors and 16
// registers, so the micro-tile is 4 weight rows × T ≤ 2 tokens (8 accumulators, 4 x vectors), or
// 8 rows × 1 token while streaming.
// Per 16-column step a weight row (16 bf16 = one ymm) widens to two f32 vectors with one shift and
// one mask; x was prepared evens-then-odds per 16 columns. Lanes are summed once per k-block, with
// an order that depends only on (cols, kc), so results do not depend on the thread count.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "backend/cpu/matmul.h"

namespace ug::cpu::detail {
namespace {

constexpr int64_t kStep = 16;
constexpr int kMaxT = 2;         // tokens per tile
constexpr int kBlockR = 4;       // rows per tile when blocking for many tokens
constexpr int kStreamR = 8;      // rows per tile when streaming 1 token: more rows in flight
constexpr int kPrefetch = 2048;  // bytes ahead in each streamed row

constexpr int stream_rows(int t) { return t == 1 ? kStreamR : kBlockR; }

// The last step of a row may be short; AVX2 has no 16-bit masked load, so copy it into zeros.
template <class Elem>
const Elem* pad_tail(const Elem* p, int64_t len, Elem (&buf)[kStep]) {
  std::memset(buf, 0, sizeof(buf));
  std::memcpy(buf, p, size_t(len) * sizeof(Elem));
  return buf;
}

struct Bf16Weights {
  using Elem = uint16_t;
  template <bool Tail>
  static void load(const Elem* p, int64_t len, __m256& a, __m256& b) {
    Elem buf[kStep];
    if (Tail) p = pad_tail(p, len, buf);
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    a = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    b = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(int(0xffff0000u))));
  }
};

struct F32Weights {
  using Elem = float;
  template <bool Tail>
  static void load(const Elem* p, int64_t len, __m256& a, __m256& b) {
    Elem buf[kStep];
    if (Tail) p = pad_tail(p, len, buf);
    a = _mm256_loadu_ps(p);
    b = _mm256_loadu_ps(p + 8);
  }
};

// [Σa, Σb, Σc, Σd] over 8 lanes each, with the same tree for every input position.
inline __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
  __m256 cd = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
  __m256 s = _mm256_add_ps(_mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

struct TileArgs {
  const void* w = nullptr;    // first weight row of the tile
  int64_t ldw = 0;            // weight row stride (elements)
  const float* xp = nullptr;  // first prepared token row of the tile
  int64_t ldx = 0;            // prepared row stride
  int64_t k0 = 0, k1 = 0;     // columns [k0, k1) of this k-block (k1 ≤ cols)
  float* y = nullptr;         // y[t0, r0]
  int64_t ldy = 0;            // output row stride
  bool accumulate = false;    // add into y (later k-blocks)
};

// One step of 16 columns at k: each weight row is loaded and widened once, then used by all T
// tokens. Tail: the row ends inside this step (padded copy; x is zero-padded). Stream: the rows
// come from DRAM, so prefetch ahead in each.
template <class L, int R, int T, bool Tail, bool Stream>
[[gnu::always_inline]] inline void step(const typename L::Elem* w, const TileArgs& a, int64_t k,
                                        __m256 (&acc)[R][T]) {
  __m256 xa[T], xb[T];
  for (int t = 0; t < T; ++t) {
    xa[t] = _mm256_loadu_ps(a.xp + t * a.ldx + k);
    xb[t] = _mm256_loadu_ps(a.xp + t * a.ldx + k + 8);
  }
  for (int r = 0; r < R; ++r) {
    const typename L::Elem* row = w + r * a.ldw + k;
    if constexpr (Stream) _mm_prefetch(reinterpret_cast<const char*>(row) + kPrefetch, _MM_HINT_T0);
    __m256 wa, wb;
    L::template load<Tail>(row, a.k1 - k, wa, wb);
    for (int t = 0; t < T; ++t) {
      acc[r][t] = _mm256_fmadd_ps(wa, xa[t], acc[r][t]);
      acc[r][t] = _mm256_fmadd_ps(wb, xb[t], acc[r][t]);
    }
  }
}

template <class L, int R, int T, bool Stream>
void tile(const TileArgs& a) {
  const auto* w = static_cast<const typename L::Elem*>(a.w);
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t k = a.k0;
  for (; k + kStep <= a.k1; k += kStep) step<L, R, T, false, Stream>(w, a, k, acc);
  if (k < a.k1) step<L, R, T, true, Stream>(w, a, k, acc);
  // Rows in groups of 4 → one xmm of sums per token, added into y[t, r:r+4].
  for (int r4 = 0; r4 < R; r4 += 4) {
    const int nr = std::min(4, R - r4);
    for (int t = 0; t < T; ++t) {
      __m256 v[4];
      for (int i = 0; i < 4; ++i) {
        v[i] = i < nr ? acc[std::min(r4 + i, R - 1)][t] : _mm256_setzero_ps();
      }
      float out[4];
      _mm_storeu_ps(out, reduce4(v[0], v[1], v[2], v[3]));
      float* yt = a.y + t * a.ldy + r4;
      for (int i = 0; i < nr; ++i) yt[i] = a.accumulate ? yt[i] + out[i] : out[i];
    }
  }
}

using TileFn = void (*)(const TileArgs&);

// table[(R-1) * kMaxT + (T-1)] = tile<R, T>; R is capped where it would not fit the registers
// (those entries are never asked for).
template <class L, bool Stream, int I>
constexpr TileFn table_entry() {
  constexpr int t = I % kMaxT + 1;
  constexpr int r = std::min(I / kMaxT + 1, Stream ? stream_rows(t) : kBlockR);
  return &tile<L, r, t, Stream>;
}

template <class L, bool Stream, int... I>
constexpr std::array<TileFn, sizeof...(I)> make_table(std::integer_sequence<int, I...>) {
  return {table_entry<L, Stream, I>()...};
}

template <class L>
void compute(const MatmulJob& job, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  static constexpr auto stream_table =
      make_table<L, true>(std::make_integer_sequence<int, kStreamR * kMaxT>{});
  static constexpr auto block_table =
      make_table<L, false>(std::make_integer_sequence<int, kBlockR * kMaxT>{});
  const int64_t cols = job.w.cols, ldy = job.w.rows;
  const auto* w = static_cast<const typename L::Elem*>(job.w.data);
  // Few tokens: stream — rows outer (a row group comes from memory once for all tokens). Many:
  // block — tokens outer (the x slice stays in L1 while the k-block's weight rows come from L2).
  const bool stream = t1 - t0 <= 2 * kMaxT;
  const int64_t rows_per_tile =
      stream ? stream_rows(int(std::min<int64_t>(kMaxT, t1 - t0))) : kBlockR;
  const TileFn* table = stream ? stream_table.data() : block_table.data();
  // Every output's k-blocks are summed in order kb = 0, kc, 2kc, ... whichever loop nest runs, so a
  // token's result does not depend on which other tokens share the call (batched decoding relies on it).
  auto run = [&](int64_t r, int64_t t, int64_t kb) {
    TileArgs a{.w = w + r * cols,
               .ldw = cols,
               .xp = job.xp + t * job.kp,
               .ldx = job.kp,
               .k0 = kb,
               .k1 = std::min(cols, kb + job.kc),
               .y = job.y + t * ldy + r,
               .ldy = ldy,
               .accumulate = kb > 0};
    int64_t nr = std::min(rows_per_tile, r1 - r), nt = std::min<int64_t>(kMaxT, t1 - t);
    table[(nr - 1) * kMaxT + (nt - 1)](a);
  };
  if (stream) {
    // k-blocks innermost: a row group is still read front to back once, like one long k-block.
    for (int64_t r = r0; r < r1; r += rows_per_tile)
      for (int64_t t = t0; t < t1; t += kMaxT)
        for (int64_t kb = 0; kb < cols; kb += job.kc) run(r, t, kb);
  } else {
    for (int64_t kb = 0; kb < cols; kb += job.kc)
      for (int64_t t = t0; t < t1; t += kMaxT)
        for (int64_t r = r0; r < r1; r += rows_per_tile) run(r, t, kb);
  }
}

void dispatch(const MatmulJob& job, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  if (job.w.dtype == DType::BF16) {
    compute<Bf16Weights>(job, r0, r1, t0, t1);
  } else {
    compute<F32Weights>(job, r0, r1, t0, t1);
  }
}

}  // namespace

const MatmulKernels& avx2_kernels() {
  static const MatmulKernels k{
      .step = kStep, .kc_prefill = 512, .max_decode_n = 4, .compute = dispatch};
  return k;
}

}  // namespace ug::cpu::detail
