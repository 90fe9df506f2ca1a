// Notices a client that has gone away while its request is still being generated, so the sequences
// can be cancelled and their KV memory freed. cpp-httplib 0.11 does not give handlers the socket,
// so the socket is found once per request by its address pair (local/remote address and port, which
// identify a TCP connection) among this process's descriptors, then polled for a hang-up. The
// socket stays open while the handler runs, so the descriptor cannot be reused meanwhile.
#pragma once

#include <string>

namespace ug::server {

class ConnectionWatch {
 public:
  ConnectionWatch(const std::string& remote_addr, int remote_port, int local_port);
  // True once the peer has closed or reset the connection. False when the socket was not found.
  bool closed() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace ug::server
