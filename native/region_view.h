#pragma once
#include <napi.h>

#include <cstdint>

#include "pool_mapping.h"

namespace xenring {

// A Buffer over region->base()[offset, offset + length) whose finalizer
// (`finalize`, given `hint`) drops the caller's reference on `region`. The
// caller has checked the bounds and taken that reference. V8 counts the
// length as external memory while the Buffer lives, as for any buffer: the
// pool releases a view it is done with by detaching it (DetachView), which
// takes the length off at once, so a stream of 16 MiB hand-offs leaves the
// count where it was and starts no GC; a view the user drops unreleased
// paces the GCs that give its pages back. If the Buffer cannot be made (e.g.
// a runtime that refuses external buffers), everything is undone and the
// error rethrown: the caller falls back to a copy.
template <typename Hint>
Napi::Value NewRegionView(Napi::Env env, PoolRegion* region, int64_t offset, int64_t length,
                          void (*finalize)(Napi::Env, uint8_t*, Hint*), Hint* hint) {
  try {
    return Napi::Buffer<uint8_t>::New(env, region->base() + offset, static_cast<size_t>(length), finalize, hint);
  } catch (...) {
    delete hint;
    region->Unref();
    throw;
  }
}

}  // namespace xenring
