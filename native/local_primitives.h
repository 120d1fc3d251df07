// Primitives of the local transport: sealed memfd pages, pipe wake-ups and
// a UNIX seqpacket rendezvous that passes fds with SCM_RIGHTS. All fds are
// O_CLOEXEC and non-blocking; every call is synchronous and never waits.
#pragma once
#include <napi.h>

namespace xenring {
void InitLocalPrimitives(Napi::Env env, Napi::Object exports);
}
