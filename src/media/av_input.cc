#if UG_HAVE_FFMPEG

#include "media/av_input.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "core/error.h"

namespace ug::av {
namespace {

constexpr int kIoBufferBytes = 64 * 1024;

// FFmpeg logs from the decoding thread (we decode audio single-threaded; frame threads of a video
// decoder may lose their line, which only shortens a message). Nothing reaches stderr: a server
// must not print whatever a hostile file makes a demuxer say.
thread_local std::string t_last_log;

void log_callback(void* avcl, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_ERROR) return;
  char line[512];
  int print_prefix = 1;
  av_log_format_line2(avcl, level, fmt, args, line, sizeof line, &print_prefix);
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (!s.empty()) t_last_log = std::move(s);
}


// Demuxers must not open anything besides the bytes we were given.
int refuse_nested_open(AVFormatContext*, AVIOContext**, const char* url, int, AVDictionary**) {
  t_last_log = std::string("refused to open '") + (url ? url : "") + "' referenced by the input";
  return AVERROR(EPERM);
}

}  // namespace

void quiet_ffmpeg_log() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(log_callback); });
}

Frame make_frame() {
  Frame f(av_frame_alloc());
  UG_CHECK(f, "out of memory allocating an AVFrame");
  return f;
}

Packet make_packet() {
  Packet p(av_packet_alloc());
  UG_CHECK(p, "out of memory allocating an AVPacket");
  return p;
}

std::string error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  std::string text(buf);
  if (!t_last_log.empty()) {
    text += " (" + t_last_log + ")";
    t_last_log.clear();
  }
  return text;
}

void fail_av(std::string_view what, std::string_view doing, int err) {
  fail("{}: {} failed: {}", what, doing, error_text(err));
}

int MemoryInput::read(void* opaque, uint8_t* buf, int size) {
  auto* c = static_cast<Cursor*>(opaque);
  const int64_t left = int64_t(c->bytes.size()) - c->pos;
  if (left <= 0) return AVERROR_EOF;
  const int n = int(std::min<int64_t>(left, size));
  std::memcpy(buf, c->bytes.data() + c->pos, size_t(n));
  c->pos += n;
  return n;
}

int64_t MemoryInput::seek(void* opaque, int64_t offset, int whence) {
  auto* c = static_cast<Cursor*>(opaque);
  const int64_t size = int64_t(c->bytes.size());
  int64_t target;
  switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
      return size;
    case SEEK_SET:
      target = offset;
      break;
    case SEEK_CUR:
      target = c->pos + offset;
      break;
    case SEEK_END:
      target = size + offset;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if (target < 0 || target > size) return AVERROR(EINVAL);
  c->pos = target;
  return target;
}

void MemoryInput::IoDeleter::operator()(AVIOContext* io) const {
  av_freep(&io->buffer);  // FFmpeg may have replaced the buffer we gave it
  avio_context_free(&io);
}

MemoryInput::MemoryInput(std::span<const uint8_t> bytes, std::string_view what) : what_(what) {
  quiet_ffmpeg_log();
  t_last_log.clear();
  UG_CHECK(!bytes.empty(), "{}: the input is empty (0 bytes)", what_);
  cursor_.bytes = bytes;
  auto* buffer = static_cast<uint8_t*>(av_malloc(kIoBufferBytes));
  UG_CHECK(buffer, "{}: out of memory", what_);
  io_.reset(avio_alloc_context(buffer, kIoBufferBytes, 0, &cursor_, &MemoryInput::read, nullptr,
                               &MemoryInput::seek));
  if (!io_) {
    av_free(buffer);
    fail("{}: out of memory", what_);
  }
  AVFormatContext* f = avformat_alloc_context();
  UG_CHECK(f, "{}: out of memory", what_);
  f->pb = io_.get();
  f->flags |= AVFMT_FLAG_CUSTOM_IO;
  f->io_open = refuse_nested_open;
  int err = avformat_open_input(&f, nullptr, nullptr, nullptr);  // frees f on failure
  if (err == AVERROR_EOF) fail("{}: the file ends inside its header (truncated?)", what_);
  if (err < 0) fail("{}: not a media file FFmpeg can read: {}", what_, error_text(err));
  format_.reset(f);
  err = avformat_find_stream_info(f, nullptr);
  if (err < 0) fail_av(what_, "reading the stream info", err);
}

std::string_view MemoryInput::container_name() const {
  return format_->iformat && format_->iformat->name ? format_->iformat->name : "unknown";
}

int MemoryInput::best_stream(AVMediaType type) const {
  int index = av_find_best_stream(format_.get(), type, -1, -1, nullptr, 0);
  if (index < 0) return -1;
  // An MP3's or M4A's cover picture is a one-frame "video" stream: not a video.
  if (format_->streams[index]->disposition & AV_DISPOSITION_ATTACHED_PIC) {
    for (unsigned i = 0; i < format_->nb_streams; ++i) {
      const AVStream* s = format_->streams[i];
      if (s->codecpar->codec_type == type && !(s->disposition & AV_DISPOSITION_ATTACHED_PIC))
        return int(i);
    }
    return -1;
  }
  return index;
}

std::string MemoryInput::describe_streams() const {
  std::string out;
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    const AVStream* s = format_->streams[i];
    const char* type = av_get_media_type_string(s->codecpar->codec_type);
    if (!out.empty()) out += ", ";
    out += type ? type : "unknown";
    if (s->disposition & AV_DISPOSITION_ATTACHED_PIC) out += " cover picture";
    out += std::string(" (") + avcodec_get_name(s->codecpar->codec_id) + ")";
  }
  return out.empty() ? "no streams" : out;
}

CodecContext MemoryInput::open_decoder(int index, int threads) const {
  const AVStream* st = format_->streams[index];
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  UG_CHECK(codec, "{}: this FFmpeg build has no decoder for codec '{}' (stream {})", what_,
           avcodec_get_name(st->codecpar->codec_id), index);
  CodecContext dec(avcodec_alloc_context3(codec));
  UG_CHECK(dec, "{}: out of memory", what_);
  int err = avcodec_parameters_to_context(dec.get(), st->codecpar);
  if (err < 0) fail_av(what_, "setting up the decoder", err);
  dec->pkt_timebase = st->time_base;
  dec->thread_count = threads;
  err = avcodec_open2(dec.get(), codec, nullptr);
  if (err < 0) fail("{}: opening the {} decoder failed: {}", what_, codec->name, error_text(err));
  return dec;
}

bool MemoryInput::read_packet(int index, AVPacket* pkt) {
  while (true) {
    av_packet_unref(pkt);
    int err = av_read_frame(format_.get(), pkt);
    if (err == AVERROR_EOF) return false;
    if (err < 0) fail_av(what_, "reading the container", err);
    if (pkt->stream_index == index) return true;
  }
}

}  // namespace ug::av

#endif  // UG_HAVE_FFMPEG
