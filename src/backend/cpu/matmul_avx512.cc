// AVX-512 matmul kernels (compiled with AVX-512 flags; only reached when cpuid + xgetbv allow it).
//
// Micro-tile: R weight rows × T ≤ 4 tokens of zmm accumulators, each holding 16 lane-wise partial
// dot products. Per 32-column step each weight row is loaded once (32 bf16 = one zmm) and widened
// to two f32 vectors with one shift (even columns) and one mask (odd columns), then used by all T
// tokens from registers; x was prepared evens-then-odds per 32 columns to match. Lanes are summed
// once per k-block. Every output's summation order depends only on (cols, kc), never on R, T or
// the task split, which makes results independent of the thread count.
//
// GCC 12's AVX-512 intrinsics build "undefined" vectors as `__m512 __Y = __Y;`, which trips
// -Wuninitialized at every inlined use; the warning is a known false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>

#include "backend/cpu/matmul.h"

namespace ug::cpu::detail {
namespace {

constexpr int64_t kStep = 32;
constexpr int kMaxT = 4;         // tokens per tile
constexpr int kBlockR = 4;       // rows per tile when blocking for many tokens: 16 accumulators
constexpr int kStreamR = 8;      // rows per tile when streaming ≤ 2 tokens: more rows in flight
constexpr int kPrefetch = 2048;  // bytes ahead in each streamed row (measured: +15-20% at n = 1)

// Rows per tile while streaming with T tokens (≤ 24 accumulators of 32 registers).
constexpr int stream_rows(int t) { return t <= 2 ? kStreamR : kBlockR; }

// Loads 32 columns at p (only len < 32 of them in the Tail case) as two f32 vectors in the
// prepared-x order.
struct Bf16Weights {
  using Elem = uint16_t;
  template <bool Tail>
  static void load(const Elem* p, int64_t len, __m512& a, __m512& b) {
    __m512i v =
        !Tail ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16(__mmask32((1ull << len) - 1), p);
    a = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    b = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xffff0000u))));
  }
};

struct F32Weights {
  using Elem = float;
  template <bool Tail>
  static void load(const Elem* p, int64_t len, __m512& a, __m512& b) {
    if (!Tail) {
      a = _mm512_loadu_ps(p);
      b = _mm512_loadu_ps(p + 16);
      return;
    }
    uint32_t m = uint32_t((1ull << len) - 1);
    a = _mm512_maskz_loadu_ps(__mmask16(m), p);
    b = _mm512_maskz_loadu_ps(__mmask16(m >> 16), p + 16);
  }
};

// Sums each of a, b, c, d across its 16 lanes → [Σa, Σb, Σc, Σd]. The tree is the same for
// every input position, so a row's sum does not depend on its neighbours.
inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  __m512 s = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                           _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
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

// One step of 32 columns at k: each weight row is loaded and widened once, then used by all T
// tokens. Tail: the row ends inside this step (masked load; x is zero-padded). Stream: the rows
// come from DRAM, so prefetch ahead in each (the hardware prefetcher alone leaves bandwidth idle).
template <class L, int R, int T, bool Tail, bool Stream>
[[gnu::always_inline]] inline void step(const typename L::Elem* w, const TileArgs& a, int64_t k,
                                        __m512 (&acc)[R][T]) {
  __m512 xa[T], xb[T];
  for (int t = 0; t < T; ++t) {
    xa[t] = _mm512_loadu_ps(a.xp + t * a.ldx + k);
    xb[t] = _mm512_loadu_ps(a.xp + t * a.ldx + k + 16);
  }
  for (int r = 0; r < R; ++r) {
    const typename L::Elem* row = w + r * a.ldw + k;
    if constexpr (Stream) _mm_prefetch(reinterpret_cast<const char*>(row) + kPrefetch, _MM_HINT_T0);
    __m512 wa, wb;
    L::template load<Tail>(row, a.k1 - k, wa, wb);
    for (int t = 0; t < T; ++t) {
      acc[r][t] = _mm512_fmadd_ps(wa, xa[t], acc[r][t]);
      acc[r][t] = _mm512_fmadd_ps(wb, xb[t], acc[r][t]);
    }
  }
}

template <class L, int R, int T, bool Stream>
void tile(const TileArgs& a) {
  const auto* w = static_cast<const typename L::Elem*>(a.w);
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  int64_t k = a.k0;
  for (; k + kStep <= a.k1; k += kStep) step<L, R, T, false, Stream>(w, a, k, acc);
  if (k < a.k1) step<L, R, T, true, Stream>(w, a, k, acc);
  // Rows in groups of 4 → one xmm of sums per token, added into y[t, r:r+4].
  for (int r4 = 0; r4 < R; r4 += 4) {
    const int nr = std::min(4, R - r4);
    const __mmask8 m = __mmask8((1u << nr) - 1);
    for (int t = 0; t < T; ++t) {
      __m512 v[4];
      for (int i = 0; i < 4; ++i) {
        v[i] = i < nr ? acc[std::min(r4 + i, R - 1)][t] : _mm512_setzero_ps();
      }
      __m128 s = reduce4(v[0], v[1], v[2], v[3]);
      float* yt = a.y + t * a.ldy + r4;
      if (a.accumulate) s = _mm_add_ps(s, _mm_maskz_loadu_ps(m, yt));
      _mm_mask_storeu_ps(yt, m, s);
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
  // Few tokens: stream — rows outer, so each row group comes from memory once for all tokens.
  // Many: block — tokens outer, so a token group's x slice stays in L1 while the k-block's weight
  // rows come from L2.
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

const MatmulKernels& avx512_kernels() {
  static const MatmulKernels k{
      .step = kStep, .kc_prefill = 1024, .max_decode_n = kMaxT, .compute = dispatch};
  return k;
}

}  // namespace ug::cpu::detail
