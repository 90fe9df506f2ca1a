// Test-only media encoder: known signals and frames -> real files (WAV, FLAC, MP3, Ogg, M4A, MKV,
// WebM, MOV, MP4) through libavcodec/libavformat, so the decoders are tested on formats without
// stored fixtures. Header-only (tests/CMakeLists.txt builds one executable per *_test.cc). The
// muxers write a temp file (MP4/MOV seek back to finish their header); the bytes are read back and
// the file removed.
#pragma once

#if __has_include(<libavformat/avformat.h>)
#define UG_TEST_HAVE_FFMPEG 1

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.h"

namespace ug::test {

inline bool have_encoder(const char* name) { return avcodec_find_encoder_by_name(name) != nullptr; }

inline void av_check(int err, const char* doing) {
  if (err >= 0) return;
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  throw std::runtime_error(std::string("test encoder: ") + doing + ": " + buf);
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// One muxer writing one stream to a temp file; finish() returns the file's bytes.
class TestMuxer {
 public:
  TestMuxer(const std::string& container, const std::string& ext) : path_(dir_.file("out." + ext)) {
    av_log_set_level(AV_LOG_ERROR);
    av_check(avformat_alloc_output_context2(&oc_, nullptr, container.c_str(), path_.c_str()),
             "output format");
  }
  ~TestMuxer() {
    avcodec_free_context(&enc_);
    if (oc_ && oc_->pb) avio_closep(&oc_->pb);
    avformat_free_context(oc_);
  }
  TestMuxer(const TestMuxer&) = delete;
  TestMuxer& operator=(const TestMuxer&) = delete;

  // Allocates the encoder; the caller fills its fields, then calls open().
  AVCodecContext* encoder(const char* name) {
    codec_ = avcodec_find_encoder_by_name(name);
    if (!codec_) throw std::runtime_error(std::string("test encoder: no encoder ") + name);
    enc_ = avcodec_alloc_context3(codec_);
    return enc_;
  }
  const AVCodec* codec() const { return codec_; }

  void open(const std::string& muxer_options = "") {  // "key=value:key=value"
    if (oc_->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    enc_->strict_std_compliance = FF_COMPLIANCE_EXPERIMENTAL;
    av_check(avcodec_open2(enc_, codec_, nullptr), "open encoder");
    st_ = avformat_new_stream(oc_, nullptr);
    av_check(avcodec_parameters_from_context(st_->codecpar, enc_), "stream parameters");
    st_->time_base = enc_->time_base;
    av_check(avio_open(&oc_->pb, path_.c_str(), AVIO_FLAG_WRITE), "open file");
    AVDictionary* opts = nullptr;
    av_check(av_dict_parse_string(&opts, muxer_options.c_str(), "=", ":", 0), "muxer options");
    const int err = avformat_write_header(oc_, &opts);
    av_dict_free(&opts);
    av_check(err, "write header");
  }

  void send(const AVFrame* frame) {  // nullptr flushes
    av_check(avcodec_send_frame(enc_, frame), "encode");
    AVPacket* pkt = av_packet_alloc();
    while (avcodec_receive_packet(enc_, pkt) >= 0) {
      if (enc_->codec_type == AVMEDIA_TYPE_VIDEO && pkt->duration == 0)
        pkt->duration = 1;  // one frame
      av_packet_rescale_ts(pkt, enc_->time_base, st_->time_base);
      pkt->stream_index = st_->index;
      av_check(av_interleaved_write_frame(oc_, pkt), "write packet");
    }
    av_packet_free(&pkt);
  }

  std::vector<uint8_t> finish() {
    send(nullptr);
    av_check(av_write_trailer(oc_), "write trailer");
    avio_closep(&oc_->pb);
    return read_bytes(path_);
  }

 private:
  TempDir dir_;
  std::string path_;
  AVFormatContext* oc_ = nullptr;
  const AVCodec* codec_ = nullptr;
  AVCodecContext* enc_ = nullptr;
  AVStream* st_ = nullptr;
};

// Writes x (nominally in [-1, 1]) as sample format `fmt`: integers scaled by 2^(bits-1), rounded,
// clipped.
inline void store_sample(AVSampleFormat fmt, uint8_t* base, int64_t i, double x) {
  auto to_int = [](double v, double scale, double lo, double hi) {
    return std::clamp(std::nearbyint(v * scale), lo, hi);
  };
  switch (fmt) {
    case AV_SAMPLE_FMT_U8:
      reinterpret_cast<uint8_t*>(base)[i] = uint8_t(to_int(x, 128, -128, 127) + 128);
      break;
    case AV_SAMPLE_FMT_S16:
      reinterpret_cast<int16_t*>(base)[i] = int16_t(to_int(x, 32768, -32768, 32767));
      break;
    case AV_SAMPLE_FMT_S32:
      reinterpret_cast<int32_t*>(base)[i] =
          int32_t(to_int(x, 2147483648.0, -2147483648.0, 2147483647.0));
      break;
    case AV_SAMPLE_FMT_FLT:
      reinterpret_cast<float*>(base)[i] = float(x);
      break;
    case AV_SAMPLE_FMT_DBL:
      reinterpret_cast<double*>(base)[i] = x;
      break;
    default:
      throw std::runtime_error("test encoder: unhandled sample format");
  }
}

struct AudioSpec {
  std::string container = "wav";  // libavformat muxer name
  std::string ext = "wav";
  std::string codec = "pcm_s16le";
  int rate = 16000;
  int64_t bit_rate = 0;                            // 0: the encoder's default
  AVSampleFormat sample_fmt = AV_SAMPLE_FMT_NONE;  // NONE: the encoder's first
  std::string muxer_options;  // "key=value:...", e.g. "metadata_header_padding=0": a small FLAC
};

// channels[c][i]: sample i of channel c, all channels the same length.
inline std::vector<uint8_t> encode_audio(const AudioSpec& spec,
                                         const std::vector<std::vector<float>>& channels) {
  TestMuxer mux(spec.container, spec.ext);
  AVCodecContext* enc = mux.encoder(spec.codec.c_str());
  enc->sample_fmt =
      spec.sample_fmt != AV_SAMPLE_FMT_NONE ? spec.sample_fmt : mux.codec()->sample_fmts[0];
  enc->sample_rate = spec.rate;
  av_channel_layout_default(&enc->ch_layout, int(channels.size()));
  enc->time_base = {1, spec.rate};
  if (spec.bit_rate) enc->bit_rate = spec.bit_rate;
  mux.open(spec.muxer_options);
  const int64_t n = int64_t(channels[0].size());
  const int chunk = enc->frame_size > 0 ? enc->frame_size : 1024;
  const bool planar = av_sample_fmt_is_planar(enc->sample_fmt);
  const AVSampleFormat packed = av_get_packed_sample_fmt(enc->sample_fmt);
  const int nch = int(channels.size());
  AVFrame* f = av_frame_alloc();
  for (int64_t start = 0; start < n; start += chunk) {
    const int len = int(std::min<int64_t>(chunk, n - start));
    const int caps = mux.codec()->capabilities;
    const bool any_size = enc->frame_size <= 0 || (caps & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) ||
                          ((caps & AV_CODEC_CAP_SMALL_LAST_FRAME) && start + chunk >= n);
    f->nb_samples = any_size ? len : enc->frame_size;  // else the last frame is padded with zeros
    f->format = enc->sample_fmt;
    f->sample_rate = spec.rate;
    av_check(av_channel_layout_copy(&f->ch_layout, &enc->ch_layout), "layout");
    av_check(av_frame_get_buffer(f, 0), "frame buffer");
    for (int c = 0; c < nch; ++c) {
      for (int i = 0; i < f->nb_samples; ++i) {
        const double x = i < len ? channels[size_t(c)][size_t(start + i)] : 0.0;
        if (planar)
          store_sample(packed, f->extended_data[c], i, x);
        else
          store_sample(packed, f->data[0], int64_t(i) * nch + c, x);
      }
    }
    f->pts = start;
    mux.send(f);
    av_frame_unref(f);
  }
  av_frame_free(&f);
  return mux.finish();
}

struct VideoSpec {
  std::string container = "matroska";
  std::string ext = "mkv";
  std::string codec = "mpeg4";
  AVPixelFormat pix_fmt = AV_PIX_FMT_YUV420P;
  int width = 64, height = 48;
  AVRational fps = {25, 1};
  int frames = 25;
};

// rgb(k, pixels) fills frame k's [height, width, 3] RGB bytes.
inline std::vector<uint8_t> encode_video(
    const VideoSpec& spec, const std::function<void(int, std::vector<uint8_t>&)>& rgb) {
  TestMuxer mux(spec.container, spec.ext);
  AVCodecContext* enc = mux.encoder(spec.codec.c_str());
  enc->pix_fmt = spec.pix_fmt;
  enc->width = spec.width;
  enc->height = spec.height;
  enc->time_base = av_inv_q(spec.fps);
  enc->framerate = spec.fps;
  enc->gop_size = 12;
  enc->bit_rate = 2'000'000;
  if (spec.codec == "libx264") av_opt_set(enc->priv_data, "preset", "ultrafast", 0);
  mux.open();
  SwsContext* sws =
      sws_getContext(spec.width, spec.height, AV_PIX_FMT_RGB24, spec.width, spec.height,
                     spec.pix_fmt, SWS_BILINEAR, nullptr, nullptr, nullptr);
  AVFrame* f = av_frame_alloc();
  std::vector<uint8_t> pixels(size_t(spec.width) * size_t(spec.height) * 3);
  for (int k = 0; k < spec.frames; ++k) {
    rgb(k, pixels);
    f->format = spec.pix_fmt;
    f->width = spec.width;
    f->height = spec.height;
    av_check(av_frame_get_buffer(f, 0), "frame buffer");
    const uint8_t* src[1] = {pixels.data()};
    const int src_stride[1] = {spec.width * 3};
    sws_scale(sws, src, src_stride, 0, spec.height, f->data, f->linesize);
    f->pts = k;
    mux.send(f);
    av_frame_unref(f);
  }
  av_frame_free(&f);
  sws_freeContext(sws);
  return mux.finish();
}

}  // namespace ug::test

#endif  // __has_include(<libavformat/avformat.h>)
