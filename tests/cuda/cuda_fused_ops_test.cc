// The fused layer kernels (backend/cuda/fused_ops.h) vs the CPU ops they fuse, over odd shapes. Skips itself on a
// machine without a usable GPU; scripts/gpu_check.sh runs it on the H200. Tolerances are those of the separate
// ops (cuda_ops_test.cc says why): each fused output goes through the same roundings in the same order.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/fused_ops.h"
#include "backend/cuda/ops.h"
#include "core/bf16.h"
#include "cuda/cuda_test_util.h"

namespace ug::cuda {
namespace {

using test::error_of;
using test::inv_freq_for;
using test::poison;
using test::random_floats;
using test::upload;

class CudaFusedOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!device_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount failed or found none)";
  }
};

// Counts elements outside ref +- tol(i), reporting the first few.
template <typename Tol>
int count_bad(const char* what, const std::vector<float>& got, const std::vector<float>& ref, Tol tol) {
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::fabs(got[i] - ref[i]) <= tol(i)) continue;
    if (++bad <= 5) ADD_FAILURE() << what << " element " << i << ": cuda " << got[i] << " cpu " << ref[i];
  }
  return bad;
}

TEST_F(CudaFusedOps, ResidualNormMatchesCpu) {
  uint32_t seed = 1;
  for (int64_t rows : {1, 3, 130, 300}) {  // 300: the many-rows variant (norm weights read where used)
    for (int64_t dim : {64, 200, 3840, 8192}) {
      for (bool post_w : {false, true}) {
        for (bool with_next : {false, true}) {
          for (float scale : {1.0f, 0.37f}) {
            SCOPED_TRACE("rows=" + std::to_string(rows) + " dim=" + std::to_string(dim) +
                         " post_weight=" + std::to_string(post_w) + " next=" + std::to_string(with_next) +
                         " scale=" + std::to_string(scale));
            const size_t n = size_t(rows * dim);
            auto branch = random_floats(n, seed++, -3.0f, 3.0f);
            auto h = random_floats(n, seed++);
            auto wp = random_floats(size_t(dim), seed++, 0.5f, 1.5f);
            auto wn = random_floats(size_t(dim), seed++, 0.5f, 1.5f);
            // The CPU order: branch <- norm(branch) * wp; h <- (h + branch) * scale; x <- norm(h) * wn.
            std::vector<float> y(n), h_ref(n), x_ref(n);
            cpu::rms_norm_to(branch.data(), y.data(), rows, dim, post_w ? wp.data() : nullptr, 1e-6);
            for (size_t i = 0; i < n; ++i) h_ref[i] = scale == 1.0f ? h[i] + y[i] : (h[i] + y[i]) * scale;
            cpu::rms_norm_to(h_ref.data(), x_ref.data(), rows, dim, wn.data(), 1e-6);

            auto db = upload(branch);
            auto dh = upload(h);
            auto dwp = upload(wp);
            auto dwn = upload(wn);
            DeviceBuffer<float> dx(n);
            poison(dx);
            residual_norm({.branch = db.data(),
                           .h = dh.data(),
                           .x = with_next ? dx.data() : nullptr,
                           .post_weight = post_w ? dwp.data() : nullptr,
                           .next_weight = dwn.data(),
                           .scale = scale,
                           .rows = rows,
                           .dim = dim});
            const auto h_out = dh.to_host();
            count_bad("h", h_out, h_ref, [&](size_t i) { return 1e-5f * (std::fabs(h[i]) + std::fabs(y[i])); });
            if (with_next) {
              count_bad("x", dx.to_host(), x_ref, [&](size_t i) { return 2e-5f * std::fabs(x_ref[i]) + 1e-30f; });
            }
            EXPECT_EQ(db.to_host(), branch) << "branch must not be written";
          }
        }
      }
    }
  }
}

// The CPU path of attention_inputs: split the fused rows, norm each head, rotate q and k.
struct QkvRef {
  std::vector<float> q, k, v;
};
QkvRef qkv_reference(const std::vector<float>& qkv, int64_t rows, int64_t H, int64_t Hkv, int64_t d, bool has_v,
                     const std::vector<float>& qw, const std::vector<float>& kw, const std::vector<int64_t>& pos,
                     const std::vector<float>& inv_freq) {
  const int64_t width = (H + Hkv + (has_v ? Hkv : 0)) * d;
  QkvRef r{std::vector<float>(size_t(rows * H * d)), std::vector<float>(size_t(rows * Hkv * d)),
           std::vector<float>(size_t(rows * Hkv * d))};
  for (int64_t t = 0; t < rows; ++t) {
    const float* row = qkv.data() + t * width;
    std::copy(row, row + H * d, r.q.begin() + t * H * d);
    std::copy(row + H * d, row + (H + Hkv) * d, r.k.begin() + t * Hkv * d);
    const float* vsrc = row + (H + (has_v ? Hkv : 0)) * d;  // k_eq_v: the raw k projection
    std::copy(vsrc, vsrc + Hkv * d, r.v.begin() + t * Hkv * d);
  }
  cpu::rms_norm_to(r.q.data(), r.q.data(), rows * H, d, qw.data(), 1e-6);
  cpu::rms_norm_to(r.k.data(), r.k.data(), rows * Hkv, d, kw.data(), 1e-6);
  cpu::rms_norm_to(r.v.data(), r.v.data(), rows * Hkv, d, nullptr, 1e-6);
  cpu::rope(r.q.data(), rows, H, d, pos, inv_freq);
  cpu::rope(r.k.data(), rows, Hkv, d, pos, inv_freq);
  return r;
}

TEST_F(CudaFusedOps, QkvPrepareMatchesCpu) {
  struct Shape {
    int64_t H, Hkv, d;
    double theta, rotating_fraction;
  };
  uint32_t seed = 500;
  // The 12B's sliding (16/8 x 256, default RoPE) and full (16/1 x 512, proportional) layers, GQA 3, odd pair counts.
  for (Shape s : {Shape{16, 8, 256, 10000.0, 1.0}, Shape{16, 1, 512, 1e6, 0.25}, Shape{6, 2, 18, 10000.0, 1.0},
                  Shape{3, 3, 6, 100.0, 1.0}, Shape{4, 2, 80, 1e6, 0.5}}) {
    for (int64_t rows : {1, 5, 67}) {
      for (bool has_v : {true, false}) {
        SCOPED_TRACE("H=" + std::to_string(s.H) + " Hkv=" + std::to_string(s.Hkv) + " d=" + std::to_string(s.d) +
                     " rows=" + std::to_string(rows) + " has_v=" + std::to_string(has_v));
        const int64_t width = (s.H + s.Hkv + (has_v ? s.Hkv : 0)) * s.d;
        auto qkv = random_floats(size_t(rows * width), seed++, -3.0f, 3.0f);
        auto qw = random_floats(size_t(s.d), seed++, 0.5f, 1.5f);
        auto kw = random_floats(size_t(s.d), seed++, 0.5f, 1.5f);
        auto inv_freq = inv_freq_for(s.d, s.theta, int64_t(s.rotating_fraction * double(s.d / 2)));
        std::mt19937 rng(seed++);
        std::vector<int64_t> pos(static_cast<size_t>(rows));
        for (auto& p : pos) p = std::uniform_int_distribution<int64_t>(0, 131071)(rng);
        const QkvRef ref = qkv_reference(qkv, rows, s.H, s.Hkv, s.d, has_v, qw, kw, pos, inv_freq);

        auto dqkv = upload(qkv);
        auto dqw = upload(qw);
        auto dkw = upload(kw);
        auto dpos = upload(pos);
        auto dfreq = upload(inv_freq);
        // q, k and v from qkv_prepare, with RoPE's (cos, sin) from `table` or computed in the kernel (nullptr).
        const auto prepare = [&](const float2* table) {
          DeviceBuffer<float> dq(ref.q.size()), dk(ref.k.size()), dv(ref.v.size());
          poison(dq);
          poison(dk);
          poison(dv);
          qkv_prepare({.qkv = dqkv.data(),
                       .q = dq.data(),
                       .k = dk.data(),
                       .v = dv.data(),
                       .q_weight = dqw.data(),
                       .k_weight = dkw.data(),
                       .positions = dpos.data(),
                       .inv_freq = dfreq.data(),
                       .rope_table = table,
                       .rows = rows,
                       .heads = s.H,
                       .kv_heads = s.Hkv,
                       .head_dim = s.d,
                       .has_v = has_v});
          return std::array<std::vector<float>, 3>{dq.to_host(), dk.to_host(), dv.to_host()};
        };
        const auto inline_rope = prepare(nullptr);
        // A rotated output mixes a pair: tolerance relative to the pair's magnitudes (as RopeMatchesCpu).
        auto pair_tol = [&](const std::vector<float>& r) {
          return [&r, d = s.d](size_t i) {
            const size_t base = i - i % size_t(d), j = i % size_t(d), half = size_t(d) / 2;
            const size_t a = base + (j < half ? j : j - half);
            return 1e-5f * (std::fabs(r[a]) + std::fabs(r[a + half])) + 1e-30f;
          };
        };
        count_bad("q", inline_rope[0], ref.q, pair_tol(ref.q));
        count_bad("k", inline_rope[1], ref.k, pair_tol(ref.k));
        count_bad("v", inline_rope[2], ref.v, [&](size_t i) { return 1e-5f * std::fabs(ref.v[i]) + 1e-30f; });

        // With the step's (cos, sin) table (what the decoder passes): the same values, so the same bits. The
        // table itself against the host's double cos / sin of the same f32 angle.
        const int64_t pairs = s.d / 2;
        DeviceBuffer<float2> table(size_t(rows * pairs));
        rope_table(
            {.positions = dpos.data(), .inv_freq = dfreq.data(), .table = table.data(), .rows = rows, .pairs = pairs});
        const std::vector<float2> got_table = table.to_host();
        int bad_table = 0;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < pairs; ++i) {
            const double angle = double(float(pos[size_t(r)]) * inv_freq[size_t(i)]);
            const float2 g = got_table[size_t(r * pairs + i)];
            if (g.x != float(std::cos(angle)) || g.y != float(std::sin(angle)))
              if (++bad_table <= 5)
                ADD_FAILURE() << "rope_table row " << r << " pair " << i << ": cuda (" << g.x << ", " << g.y
                              << ") host (" << float(std::cos(angle)) << ", " << float(std::sin(angle)) << ")";
          }
        EXPECT_TRUE(prepare(table.data()) == inline_rope) << "q, k, v with the table differ from the inline RoPE";
      }
    }
  }
}

// qkv_prepare appending the step's k / v rows (store_seqs) leaves the caches exactly as kv_store after it: one-row
// sequences into a ring that wrapped, a fresh ring, a linear cache; every cache type; with and without v_proj.
TEST_F(CudaFusedOps, QkvPrepareStoresRowsAsKvStore) {
  const int64_t H = 4, Hkv = 2, d = 64, rows = 3, row_size = Hkv * d;
  const int64_t caps[rows] = {8, 8, 0}, starts[rows] = {13, 2, 5};
  for (KvType type : {KvType::Bf16, KvType::F32, KvType::Fp8}) {
    for (bool has_v : {true, false}) {
      SCOPED_TRACE("type=" + std::to_string(int(type)) + " has_v=" + std::to_string(has_v));
      const int64_t width = (H + Hkv + (has_v ? Hkv : 0)) * d, bytes = kv_type_bytes(type);
      auto dqkv = upload(random_floats(size_t(rows * width), 1700 + uint32_t(type) * 2 + has_v, -3.0f, 3.0f));
      auto dw = upload(random_floats(size_t(d), 1710, 0.5f, 1.5f));
      auto dfreq = upload(inv_freq_for(d, 10000.0, d / 2));
      auto dpos = upload(std::vector<int64_t>(starts, starts + rows));
      auto drow_seq = upload(std::vector<int32_t>{0, 1, 2});
      const float k_scale = type == KvType::Fp8 ? 2.0f : 1.0f;
      std::vector<DeviceBuffer<uint8_t>> dev;  // [variant][seq][k, v] caches, filled alike
      for (int variant = 0; variant < 2; ++variant) {
        std::vector<AttentionSeq> seqs;
        for (int64_t i = 0; i < rows; ++i) {
          const int64_t slots = caps[i] > 0 ? caps[i] : starts[i] + 1;
          for (int kv = 0; kv < 2; ++kv) {
            std::vector<uint8_t> init(size_t(slots * row_size * bytes));
            for (size_t b = 0; b < init.size(); ++b) init[b] = uint8_t(b * 7 + kv);  // old rows stay as they were
            dev.push_back(upload(init));
          }
          seqs.push_back({.cache_k = dev[dev.size() - 2].data(),
                          .cache_v = dev.back().data(),
                          .ring_capacity = caps[i],
                          .row0 = i,
                          .n_rows = 1,
                          .chunk_start = starts[i]});
        }
        auto dseqs = upload(seqs);
        DeviceBuffer<float> q(size_t(rows * H * d)), k(size_t(rows * row_size)), v(size_t(rows * row_size));
        QkvPrepareParams p{.qkv = dqkv.data(),
                           .q = q.data(),
                           .k = k.data(),
                           .v = v.data(),
                           .q_weight = dw.data(),
                           .k_weight = dw.data(),
                           .positions = dpos.data(),
                           .inv_freq = dfreq.data(),
                           .rows = rows,
                           .heads = H,
                           .kv_heads = Hkv,
                           .head_dim = d,
                           .has_v = has_v};
        if (variant == 0) {
          p.store_seqs = dseqs.data();
          p.store_row_seq = drow_seq.data();
          p.store_type = type;
          p.store_k_scale = k_scale;
          qkv_prepare(p);
        } else {
          qkv_prepare(p);
          kv_store({.k = k.data(),
                    .v = v.data(),
                    .seqs = dseqs.data(),
                    .row_seq = drow_seq.data(),
                    .rows = rows,
                    .row_size = row_size,
                    .type = type,
                    .k_scale = k_scale});
        }
        UG_CUDA_CHECK(cudaDeviceSynchronize());
      }
      for (size_t c = 0; c < dev.size() / 2; ++c) EXPECT_EQ(dev[c].to_host(), dev[dev.size() / 2 + c].to_host()) << c;
    }
  }
}

TEST_F(CudaFusedOps, GegluRowsMatchesCpu) {
  uint32_t seed = 900;
  for (int64_t rows : {1, 7}) {
    for (int64_t inter : {5, 6, 300, 15360}) {  // scalar (not a multiple of 4) and 16-byte paths
      SCOPED_TRACE("rows=" + std::to_string(rows) + " inter=" + std::to_string(inter));
      auto gate_up = random_floats(size_t(rows * 2 * inter), seed++, -6.0f, 6.0f);
      std::vector<float> gate(size_t(rows * inter)), up(gate.size()), ref(gate.size());
      for (int64_t r = 0; r < rows; ++r) {
        std::copy_n(gate_up.begin() + r * 2 * inter, inter, gate.begin() + r * inter);
        std::copy_n(gate_up.begin() + r * 2 * inter + inter, inter, up.begin() + r * inter);
      }
      cpu::gelu_tanh_mul(gate.data(), up.data(), ref.data(), rows * inter);
      auto dgu = upload(gate_up);
      DeviceBuffer<float> dout(ref.size());
      poison(dout);
      geglu_rows({.gate_up = dgu.data(), .out = dout.data(), .rows = rows, .inter = inter});
      const std::vector<float> got = dout.to_host();
      count_bad("out", got, ref,
                [&](size_t i) { return 1e-5f * (std::fabs(ref[i]) + 0.5f * std::fabs(gate[i] * up[i])) + 1e-30f; });
      // The bf16 output is the f32 one rounded to nearest even, bit for bit (what the down projection's own
      // rounding pass made of it before).
      DeviceBuffer<uint16_t> dbf(ref.size());
      UG_CUDA_CHECK(cudaMemset(dbf.data(), 0xFF, dbf.bytes()));
      geglu_rows({.gate_up = dgu.data(), .out_bf16 = dbf.data(), .rows = rows, .inter = inter});
      const std::vector<uint16_t> bits = dbf.to_host();
      size_t differ = 0;
      for (size_t i = 0; i < bits.size(); ++i) differ += bits[i] != f32_to_bf16(got[i]);
      EXPECT_EQ(differ, 0u);
    }
  }
}

// A matrix as `count` partial chunks (a GEMM's unsummed outputs, F32Chunks) `stride` floats apart, and the matrix
// they sum to on the host in the kernels' order (((c0 + c1) + c2) + ..., f32).
struct Chunked {
  std::vector<float> chunks, sum;
  int64_t count, stride;
};
Chunked chunked(size_t n, int64_t count, uint32_t seed) {
  const int64_t stride = int64_t(n) + 4;  // a gap between chunks, 16-byte aligned
  Chunked c{random_floats(size_t(count * stride), seed, -2.0f, 2.0f), std::vector<float>(n), count, stride};
  for (size_t i = 0; i < n; ++i) {
    c.sum[i] = c.chunks[i];
    for (int64_t k = 1; k < count; ++k) c.sum[i] += c.chunks[size_t(k * stride) + i];
  }
  return c;
}

// bf16(x), and the second term bf16(x - bf16(x)) of a two-term split, as to_bf16 / to_bf16_split make them.
void expect_bf16_terms(const std::vector<float>& x, const std::vector<uint16_t>& hi, const std::vector<uint16_t>* lo) {
  size_t differ = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    differ += hi[i] != f32_to_bf16(x[i]);
    if (lo) differ += (*lo)[i] != f32_to_bf16(x[i] - round_to_bf16(x[i]));
  }
  EXPECT_EQ(differ, 0u);
}

// Reading a GEMM's partials (summed as loaded) gives the bits of reading their sum, and the bf16 terms written for
// the next GEMM are the f32 output rounded exactly as the rounding passes they replace.
TEST_F(CudaFusedOps, ChunkedInputsAndBf16TermsMatchThePlainKernels) {
  uint32_t seed = 1300;
  // 9: three rounds of loads; 300 rows: the residual norm's many-rows variant.
  for (auto [rows, count] : {std::pair<int64_t, int64_t>{3, 3}, {70, 2}, {5, 9}, {300, 9}}) {
    SCOPED_TRACE("rows=" + std::to_string(rows) + " chunks=" + std::to_string(count));
    {  // residual_norm
      const int64_t dim = 3840;
      const size_t n = size_t(rows * dim);
      const Chunked b = chunked(n, count, seed++);
      const auto h = random_floats(n, seed++);
      const auto w = random_floats(size_t(dim), seed++, 0.5f, 1.5f);
      auto dchunks = upload(b.chunks);
      auto dsum = upload(b.sum);
      auto dw = upload(w);
      auto dh1 = upload(h);
      auto dh2 = upload(h);
      DeviceBuffer<float> dx1(n), dx2(n);
      DeviceBuffer<uint16_t> dterms(2 * n);
      const ResidualNormParams base{.post_weight = dw.data(), .next_weight = dw.data(), .rows = rows, .dim = dim};
      ResidualNormParams plain = base, fused = base;
      plain.branch = dsum.data();
      plain.h = dh1.data();
      plain.x = dx1.data();
      fused.branch = dchunks.data();
      fused.branch_chunks = count;
      fused.branch_stride = b.stride;
      fused.h = dh2.data();
      fused.x = dx2.data();
      fused.x_hi = dterms.data();
      fused.x_lo = dterms.data() + n;
      residual_norm(plain);
      residual_norm(fused);
      EXPECT_EQ(dh2.to_host(), dh1.to_host());
      const auto x = dx1.to_host();
      EXPECT_EQ(dx2.to_host(), x);
      const auto terms = dterms.to_host();
      const std::vector<uint16_t> hi(terms.begin(), terms.begin() + int64_t(n)),
          lo(terms.begin() + int64_t(n), terms.end());
      expect_bf16_terms(x, hi, &lo);
    }
    {  // qkv_prepare, the 12B's sliding-layer shape
      const int64_t H = 16, Hkv = 8, d = 256, width = (H + 2 * Hkv) * d;
      const Chunked c = chunked(size_t(rows * width), count, seed++);
      const auto w = random_floats(size_t(d), seed++, 0.5f, 1.5f);
      const auto inv_freq = inv_freq_for(d, 10000.0, d / 2);
      std::vector<int64_t> pos(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) pos[size_t(r)] = 37 * r + 5;
      auto dchunks = upload(c.chunks);
      auto dsum = upload(c.sum);
      auto dw = upload(w);
      auto dpos = upload(pos);
      auto dfreq = upload(inv_freq);
      std::vector<DeviceBuffer<float>> out;
      for (int i = 0; i < 6; ++i) out.emplace_back(size_t(rows * (i % 3 == 0 ? H : Hkv) * d));
      for (int fused = 0; fused < 2; ++fused) {
        qkv_prepare({.qkv = fused ? dchunks.data() : dsum.data(),
                     .qkv_chunks = fused ? count : 1,
                     .qkv_stride = fused ? c.stride : 0,
                     .q = out[size_t(3 * fused)].data(),
                     .k = out[size_t(3 * fused + 1)].data(),
                     .v = out[size_t(3 * fused + 2)].data(),
                     .q_weight = dw.data(),
                     .k_weight = dw.data(),
                     .positions = dpos.data(),
                     .inv_freq = dfreq.data(),
                     .rows = rows,
                     .heads = H,
                     .kv_heads = Hkv,
                     .head_dim = d});
      }
      for (int i = 0; i < 3; ++i) EXPECT_EQ(out[size_t(3 + i)].to_host(), out[size_t(i)].to_host()) << "output " << i;
    }
    for (int64_t inter : {300, 15361}) {  // geglu_rows: 16-byte and scalar paths
      SCOPED_TRACE("inter=" + std::to_string(inter));
      const size_t n = size_t(rows * inter);
      const Chunked c = chunked(2 * n, count, seed++);
      auto dchunks = upload(c.chunks);
      auto dsum = upload(c.sum);
      DeviceBuffer<float> dout(n);
      DeviceBuffer<uint16_t> dterms(2 * n), done(n);
      geglu_rows({.gate_up = dsum.data(), .out = dout.data(), .rows = rows, .inter = inter});
      geglu_rows({.gate_up = dchunks.data(),
                  .gate_up_chunks = count,
                  .gate_up_stride = c.stride,
                  .out_bf16 = dterms.data(),
                  .out_lo = dterms.data() + n,
                  .rows = rows,
                  .inter = inter});
      geglu_rows({.gate_up = dchunks.data(),
                  .gate_up_chunks = count,
                  .gate_up_stride = c.stride,
                  .out_bf16 = done.data(),
                  .rows = rows,
                  .inter = inter});
      const auto y = dout.to_host();
      const auto terms = dterms.to_host();
      const std::vector<uint16_t> hi(terms.begin(), terms.begin() + int64_t(n)),
          lo(terms.begin() + int64_t(n), terms.end());
      expect_bf16_terms(y, hi, &lo);
      expect_bf16_terms(y, done.to_host(), nullptr);
    }
  }
}

TEST_F(CudaFusedOps, UnsupportedArgumentsAreErrorsNamingThem) {
  DeviceBuffer<float> f(64);
  DeviceBuffer<int64_t> pos(1);
  auto msg = error_of([&] { residual_norm({.branch = f.data(), .h = f.data(), .rows = 1, .dim = 8193}); });
  EXPECT_NE(msg.find("cuda residual_norm: dim 8193 outside 1..8192"), std::string::npos) << msg;
  msg = error_of([&] { residual_norm({.branch = f.data(), .h = f.data(), .x = f.data(), .rows = 1, .dim = 64}); });
  EXPECT_NE(msg.find("cuda residual_norm: x may not alias"), std::string::npos) << msg;
  msg = error_of([&] {
    qkv_prepare({.qkv = f.data(),
                 .q = f.data(),
                 .k = f.data(),
                 .v = f.data(),
                 .positions = pos.data(),
                 .inv_freq = f.data(),
                 .rows = 1,
                 .heads = 1,
                 .kv_heads = 1,
                 .head_dim = 1024});
  });
  EXPECT_NE(msg.find("cuda qkv_prepare: head_dim 1024 must be even, 2..512"), std::string::npos) << msg;
  msg = error_of([&] { geglu_rows({.gate_up = f.data(), .rows = 1, .inter = 8}); });
  EXPECT_NE(msg.find("cuda geglu_rows: gate_up and exactly one of out / out_bf16 must be set"), std::string::npos)
      << msg;
  msg = error_of([&] {
    geglu_rows({.gate_up = f.data(), .gate_up_chunks = 2, .gate_up_stride = 8, .out = f.data(), .rows = 1, .inter = 8});
  });
  EXPECT_NE(msg.find("cuda geglu_rows: gate_up: 2 chunks 8 floats apart (need >= 1 chunk, each of 16 floats)"),
            std::string::npos)
      << msg;
  DeviceBuffer<uint16_t> bf(64);
  msg =
      error_of([&] { geglu_rows({.gate_up = f.data(), .out = f.data(), .out_lo = bf.data(), .rows = 1, .inter = 8}); });
  EXPECT_NE(msg.find("cuda geglu_rows: out_lo needs out_bf16"), std::string::npos) << msg;
  msg = error_of([&] { residual_norm({.branch = f.data(), .h = f.data(), .x_hi = bf.data(), .rows = 1, .dim = 64}); });
  EXPECT_NE(msg.find("cuda residual_norm: x_hi needs x"), std::string::npos) << msg;
  msg = error_of([&] { residual_norm({.branch = f.data(), .branch_chunks = 0, .h = f.data(), .rows = 1, .dim = 8}); });
  EXPECT_NE(msg.find("cuda residual_norm: branch: 0 chunks"), std::string::npos) << msg;
  DeviceBuffer<float2> table(8);
  msg = error_of([&] {
    rope_table({.positions = pos.data(), .inv_freq = f.data(), .table = table.data(), .rows = 1, .pairs = 0});
  });
  EXPECT_NE(msg.find("cuda rope_table: rows 1 x pairs 0 out of range"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ug::cuda
