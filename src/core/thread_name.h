// Names the calling thread (shown by top -H, perf, gdb; Linux keeps the first 15 characters), so that a profile
// of the server tells the scheduler, the thread pool and the HTTP threads apart.
#pragma once

#include <pthread.h>

namespace ug {

inline void name_current_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace ug
