// cpp-httplib (Debian's 0.11, a compiled library) listens with a backlog of 5 connections: a burst
// of clients connecting at once (an agent fleet, a load test at concurrency 64) overflows the
// accept queue, and some connections then fail after a 1 s SYN retransmit (seen as "Read error" by
// clients; counted in `nstat TcpExtListenOverflows`). Linux lets listen() be called again on a
// listening socket to change its backlog; this finds the server's listening socket by its port and
// does that.
#pragma once

namespace ug::server {

// Re-listens on the process's listening TCP socket bound to `port` with `backlog` (capped by
// net.core.somaxconn). Returns false if no such socket was found or listen() failed.
bool widen_listen_backlog(int port, int backlog);

}  // namespace ug::server
