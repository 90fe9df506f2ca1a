// widen_listen_backlog: finds the process's listening socket by port and re-listens with a larger
// backlog (httplib listens with 5). The kernel reports a listener's backlog in
// TCP_INFO.tcpi_sacked.
#include "server/listen_backlog.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ug::server {
namespace {

int backlog_of(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  EXPECT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
  return int(info.tcpi_sacked);  // sk_max_ack_backlog for a listening socket
}

TEST(ListenBacklog, RaisesTheBacklogOfTheListeningSocket) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 5), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const int port = ntohs(a.sin_port);
  EXPECT_EQ(backlog_of(fd), 5);
  EXPECT_TRUE(widen_listen_backlog(port, 128));
  EXPECT_EQ(backlog_of(fd), 128);
  EXPECT_FALSE(widen_listen_backlog(port == 65535 ? 1 : port + 1, 128));  // nothing listens there
  close(fd);
}

}  // namespace
}  // namespace ug::server
