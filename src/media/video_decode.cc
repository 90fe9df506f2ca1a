#include "media/video_decode.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>

#include "core/error.h"
#include "core/mapped_file.h"

#if UG_HAVE_FFMPEG
#include "media/av_input.h"
#endif

namespace ug {

namespace {

// floor(i * T / n) for i in [0, n): HF's uniform sampling; all T frames when T <= n.
std::vector<int64_t> uniform_indices(int64_t total, int64_t n) {
  std::vector<int64_t> out(size_t(std::min(total, n)));
  if (total <= n) {
    std::iota(out.begin(), out.end(), int64_t(0));
  } else {
    for (int64_t i = 0; i < n; ++i) out[size_t(i)] = i * total / n;
  }
  return out;
}

}  // namespace

std::vector<int64_t> sample_frame_indices(int64_t total_frames, double stream_fps,
                                          const VideoSampling& sampling,
                                          const MediaLimits& limits) {
  UG_CHECK(total_frames > 0, "video sampling: the video has no frames");
  const int64_t limit = limits.max_video_frames;
  if (sampling.fps <= 0) {
    UG_CHECK(sampling.num_frames > 0, "video sampling: num_frames must be positive, got {}",
             sampling.num_frames);
    const int64_t kept = std::min(sampling.num_frames, total_frames);
    UG_CHECK(kept <= limit,
             "video sampling: {} frames exceeds the limit of {} (MediaLimits::max_video_frames)",
             kept, limit);
    return uniform_indices(total_frames, sampling.num_frames);
  }
  UG_CHECK(std::isfinite(sampling.fps), "video sampling: fps must be finite, got {}", sampling.fps);
  UG_CHECK(std::isfinite(stream_fps) && stream_fps > 0,
           "video sampling: the stream frame rate {} is not usable", stream_fps);
  const int64_t cap = sampling.max_frames > 0 ? std::min(sampling.max_frames, limit) : limit;
  UG_CHECK(cap > 0,
           "video sampling: max_frames {} and MediaLimits::max_video_frames {} leave no frames",
           sampling.max_frames, limit);
  // One frame every 1/F s is every stream_fps/F source frames; asking for more than the stream has
  // keeps every frame once. The epsilon keeps k * 25/1 from flooring to 24.999... with rational
  // rates like 30000/1001.
  const double step = std::max(stream_fps / sampling.fps, 1.0);
  std::vector<int64_t> out;
  for (int64_t k = 0;; ++k) {
    const double at = std::floor(double(k) * step + 1e-9);
    if (at >= double(total_frames)) break;
    if (int64_t(out.size()) == cap)
      return uniform_indices(total_frames, cap);  // too long: spread cap frames
    out.push_back(int64_t(at));
  }
  return out;
}

VideoFrames decode_video_file(const std::string& path, const VideoSampling& sampling,
                              const MediaLimits& limits) {
  MappedFile file(path);
  UG_CHECK(int64_t(file.size()) <= limits.max_file_bytes,
           "{}: {} bytes exceeds the limit of {} bytes", path, file.size(), limits.max_file_bytes);
  return decode_video({reinterpret_cast<const uint8_t*>(file.data()), file.size()}, sampling,
                      limits, path);
}

#if UG_HAVE_FFMPEG
namespace {

void check_frame_size(int64_t w, int64_t h, const MediaLimits& limits, std::string_view what) {
  UG_CHECK(w > 0 && h > 0, "{}: the video has no frame size ({}x{})", what, w, h);
  UG_CHECK(
      w <= limits.max_image_side && h <= limits.max_image_side,
      "{}: frame size {}x{} exceeds the limit of {} pixels per side (MediaLimits::max_image_side)",
      what, w, h, limits.max_image_side);
  UG_CHECK(w * h <= limits.max_image_pixels,
           "{}: frame size {}x{} exceeds the limit of {} pixels (MediaLimits::max_image_pixels)",
           what, w, h, limits.max_image_pixels);
}

void check_duration(double seconds, const MediaLimits& limits, std::string_view what) {
  UG_CHECK(
      seconds <= limits.max_video_seconds,
      "{}: the video lasts {:.1f} s, beyond the limit of {} s (MediaLimits::max_video_seconds)",
      what, seconds, limits.max_video_seconds);
}

// avg_frame_rate first (what PyAV's stream.average_rate, and so HF, reads), then r_frame_rate, then
// HF's 24.
double stream_fps(const AVStream* st, std::string_view what) {
  for (AVRational r : {st->avg_frame_rate, st->r_frame_rate}) {
    if (r.num > 0 && r.den > 0) return av_q2d(r);
  }
  std::fprintf(stderr,
               "warning: %.*s: the video stream has no frame rate; assuming 24 fps (as HF does)\n",
               int(what.size()), what.data());
  return 24.0;
}

// Frames of stream `index` by demuxing every packet (no decoding): for containers whose header has
// no count (Matroska, WebM, raw streams). Stops with an error as soon as the count passes the
// duration limit. A Matroska/WebM file cut short demuxes quietly to its end, so the last packet's
// end time is compared with the duration the container declares (when it declares one; slack 0.25 s
// + 0.1% for rounding and the last frame's length).
int64_t count_frames(av::MemoryInput& input, int index, double fps, const MediaLimits& limits) {
  const AVStream* st = input.format()->streams[index];
  av::Packet pkt = av::make_packet();
  int64_t n = 0, end = AV_NOPTS_VALUE;  // end: latest pts + duration, in the stream's time base
  while (input.read_packet(index, pkt.get())) {
    ++n;
    if (double(n) > limits.max_video_seconds * fps)
      check_duration(double(n) / fps, limits, input.what());
    if (pkt->pts != AV_NOPTS_VALUE)
      end = std::max(end, pkt->pts + std::max<int64_t>(pkt->duration, 0));
  }
  const AVFormatContext* f = input.format();
  if (end != AV_NOPTS_VALUE && f->duration > 0 &&
      f->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE) {
    const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    const double declared = double(f->duration) / AV_TIME_BASE;
    const double got = double(end - start) * av_q2d(st->time_base);
    UG_CHECK(got >= declared - 0.25 - 0.001 * declared,
             "{}: the file is truncated or corrupt: the container declares {:.3f} s but the video "
             "stream ends at "
             "{:.3f} s",
             input.what(), declared, got);
  }
  return n;
}

// Decoded frames -> RGB24 with libswscale, the way PyAV's frame.to_ndarray(format="rgb24") does it
// (PyAV up to 15): SWS_BILINEAR, and no colorspace override, so YUV is read with swscale's defaults
// (BT.601 matrix; limited range, full range for the yuvj formats). Planar GBR (FFV1, lossless H.264
// RGB) converts losslessly. Every frame is scaled to the first frame's size, so a stream that
// changes resolution still yields equal frames.
class RgbConverter {
 public:
  RgbConverter(const MediaLimits& limits, std::string_view what) : limits_(limits), what_(what) {}

  RgbImage convert(const AVFrame* f) {
    check_frame_size(f->width, f->height, limits_, what_);
    if (!dst_) allocate(f->width, f->height);
    sws_.reset(sws_getCachedContext(sws_.release(), f->width, f->height, AVPixelFormat(f->format),
                                    dst_->width, dst_->height, AV_PIX_FMT_RGB24, SWS_BILINEAR,
                                    nullptr, nullptr, nullptr));
    if (!sws_) {
      const char* name = av_get_pix_fmt_name(AVPixelFormat(f->format));
      fail("{}: cannot convert pixel format '{}' to RGB", what_, name ? name : "?");
    }
    const int rows =
        sws_scale(sws_.get(), f->data, f->linesize, 0, f->height, dst_->data, dst_->linesize);
    UG_CHECK(rows == dst_->height, "{}: converting a frame to RGB failed ({} of {} rows)", what_,
             rows, dst_->height);
    RgbImage img;
    img.size = {dst_->height, dst_->width};
    const size_t row_bytes = size_t(dst_->width) * 3;
    img.rgb.resize(row_bytes * size_t(dst_->height));  // [h, w, 3]
    for (int y = 0; y < dst_->height; ++y)
      std::memcpy(img.rgb.data() + size_t(y) * row_bytes,
                  dst_->data[0] + int64_t(y) * dst_->linesize[0], row_bytes);
    return img;
  }

 private:
  void allocate(int w, int h) {
    dst_ = av::make_frame();
    dst_->format = AV_PIX_FMT_RGB24;
    dst_->width = w;
    dst_->height = h;
    int err = av_frame_get_buffer(dst_.get(), 0);  // aligned rows with padding, as swscale wants
    if (err < 0) av::fail_av(what_, "allocating an RGB frame", err);
  }

  const MediaLimits& limits_;
  std::string_view what_;
  av::Sws sws_;
  av::Frame dst_;
};

struct StreamInfo {
  int index = -1;
  double fps = 0;
  int64_t total_frames = 0;
};

// Picks the video stream and reads its frame rate and frame count, checking the limits that the
// header can already decide. May consume `input` (when it counts packets): `consumed` says so.
StreamInfo probe(av::MemoryInput& input, const MediaLimits& limits, bool& consumed) {
  std::string_view what = input.what();
  StreamInfo info;
  info.index = input.best_stream(AVMEDIA_TYPE_VIDEO);
  UG_CHECK(info.index >= 0, "{}: no video stream in this {} file (it has: {})", what,
           input.container_name(), input.describe_streams());
  const AVStream* st = input.format()->streams[info.index];
  check_frame_size(st->codecpar->width, st->codecpar->height, limits, what);
  info.fps = stream_fps(st, what);
  if (st->duration > 0 && st->time_base.den > 0)
    check_duration(double(st->duration) * av_q2d(st->time_base), limits, what);
  consumed = st->nb_frames <= 0;
  info.total_frames = consumed ? count_frames(input, info.index, info.fps, limits) : st->nb_frames;
  UG_CHECK(info.total_frames > 0, "{}: the video stream has no frames", what);
  check_duration(double(info.total_frames) / info.fps, limits, what);
  return info;
}

}  // namespace

VideoFrames decode_video(std::span<const uint8_t> bytes, const VideoSampling& sampling,
                         const MediaLimits& limits, std::string_view what) {
  UG_CHECK(int64_t(bytes.size()) <= limits.max_file_bytes,
           "{}: {} bytes exceeds the limit of {} bytes", what, bytes.size(), limits.max_file_bytes);
  auto input = std::make_unique<av::MemoryInput>(bytes, what);
  bool consumed = false;
  const StreamInfo info = probe(*input, limits, consumed);
  if (consumed)
    input = std::make_unique<av::MemoryInput>(bytes, what);  // second pass from the start

  VideoFrames out;
  out.stream_fps = info.fps;
  out.total_frames = info.total_frames;
  out.indices = with_context(std::string(what), [&] {
    return sample_frame_indices(info.total_frames, info.fps, sampling, limits);
  });
  for (int64_t i : out.indices) out.timestamps.push_back(double(i) / info.fps);

  av::CodecContext dec = input->open_decoder(info.index, 0);  // frame threads: same frames, faster
  RgbConverter rgb(limits, what);
  int64_t decoded = 0;
  auto on_frame = [&](AVFrame* f) {
    while (out.frames.size() < out.indices.size() && out.indices[out.frames.size()] == decoded)
      out.frames.push_back(rgb.convert(f));
    ++decoded;
    return out.frames.size() < out.indices.size();  // stop decoding after the last sampled frame
  };
  av::Packet pkt = av::make_packet();
  av::Frame frame = av::make_frame();
  bool more = true;
  while (more && input->read_packet(info.index, pkt.get()))
    more = av::decode_packet(dec.get(), pkt.get(), frame.get(), what, on_frame);
  if (more) av::decode_packet(dec.get(), nullptr, frame.get(), what, on_frame);
  UG_CHECK(out.frames.size() == out.indices.size(),
           "{}: the stream decodes to {} frames but {} were expected (frame {} was sampled); the "
           "file is truncated "
           "or its header miscounts frames",
           what, decoded, info.total_frames, out.indices[out.frames.size()]);
  return out;
}

#else  // !UG_HAVE_FFMPEG

VideoFrames decode_video(std::span<const uint8_t>, const VideoSampling&, const MediaLimits&,
                         std::string_view what) {
  fail(
      "{}: this build has no FFmpeg support for video (install the "
      "libavformat/libavcodec/libswscale "
      "development packages, e.g. scripts/install_deps.sh, and rebuild)",
      what);
}

#endif  // UG_HAVE_FFMPEG

}  // namespace ug
