// FFmpeg plumbing shared by the audio and video decoders (internal to src/media; include only under
// UG_HAVE_FFMPEG). An encoded input is a span of bytes in memory: it is demuxed through a custom
// AVIOContext, never a URL, and every nested open a demuxer might try (HLS segments, MOV data
// references, concat lists) is refused, so a request body cannot make the server read local files.
//
// Every FFmpeg failure becomes a ug::Error that names the input (`what`), the step and FFmpeg's own
// text; FFmpeg's log is kept off stderr, but its last error line is appended to the message.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

namespace ug::av {

// RAII owners of the FFmpeg objects (each deleter calls the matching *_free).
struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using CodecContext = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using Frame = std::unique_ptr<AVFrame, FrameDeleter>;
using Packet = std::unique_ptr<AVPacket, PacketDeleter>;
using Sws = std::unique_ptr<SwsContext, SwsDeleter>;

Frame make_frame();  // throws on allocation failure
Packet make_packet();

// Routes FFmpeg's log away from stderr (keeping the last error line for error_text). MemoryInput calls
// it; code that uses libavcodec without a MemoryInput (a lone BMP decode) should call it first. Idempotent.
void quiet_ffmpeg_log();

// FFmpeg's text for an error code, plus the last error line FFmpeg logged on this thread (if any).
std::string error_text(int err);
// Throws ug::Error "WHAT: DOING failed: TEXT".
[[noreturn]] void fail_av(std::string_view what, std::string_view doing, int err);

// A demuxer reading from memory. The bytes must outlive the object.
class MemoryInput {
 public:
  // Opens the container and reads its stream info; throws ug::Error naming `what` when the bytes
  // are empty or not a container FFmpeg can read.
  MemoryInput(std::span<const uint8_t> bytes, std::string_view what);
  MemoryInput(const MemoryInput&) = delete;
  MemoryInput& operator=(const MemoryInput&) = delete;

  AVFormatContext* format() const { return format_.get(); }
  const std::string& what() const { return what_; }
  std::string_view container_name() const;

  // The best stream of `type` (av_find_best_stream), skipping cover art; -1 when there is none.
  int best_stream(AVMediaType type) const;
  // "video (h264), audio (aac)": what the container holds, for "no audio stream" messages.
  std::string describe_streams() const;
  // A decoder opened for stream `index`; `threads` 0 lets FFmpeg choose.
  CodecContext open_decoder(int index, int threads) const;

  // The next packet of stream `index` into `pkt`; false at the end of the input. Other streams'
  // packets are skipped; read errors other than end-of-file throw.
  bool read_packet(int index, AVPacket* pkt);

 private:
  struct Cursor {
    std::span<const uint8_t> bytes;
    int64_t pos = 0;
  };
  struct IoDeleter {
    void operator()(AVIOContext* io) const;
  };
  struct FormatDeleter {
    void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
  };
  static int read(void* opaque, uint8_t* buf, int size);
  static int64_t seek(void* opaque, int64_t offset, int whence);

  std::string what_;
  Cursor cursor_;
  std::unique_ptr<AVIOContext, IoDeleter> io_;              // declared first: freed after format_
  std::unique_ptr<AVFormatContext, FormatDeleter> format_;  // does not own io_ (custom I/O)
};

// Sends `pkt` (nullptr = flush) to the decoder and calls on_frame(AVFrame*) for every frame it
// returns. on_frame returns false to stop early. Returns false when stopped early. Decoder errors
// throw.
template <typename OnFrame>
bool decode_packet(AVCodecContext* dec, const AVPacket* pkt, AVFrame* frame, std::string_view what,
                   OnFrame&& on_frame) {
  int err = avcodec_send_packet(dec, pkt);
  if (err < 0 && err != AVERROR_EOF) fail_av(what, "decoding", err);
  while (true) {
    err = avcodec_receive_frame(dec, frame);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return true;
    if (err < 0) fail_av(what, "decoding", err);
    bool go_on = on_frame(frame);
    av_frame_unref(frame);
    if (!go_on) return false;
  }
}

}  // namespace ug::av
