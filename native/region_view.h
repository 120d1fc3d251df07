#pragma once
#include <napi.h>

#include <cstdint>

#include "pool_mapping.h"

namespace xenring {

// A Buffer over region->base()[offset, offset + length) whose finalizer
// (`finalize`, given `hint`) drops the caller's reference on `region`. The
// caller has checked the bounds and taken that reference. `uncounted`: the
// length is taken off V8's external count first (a view's pages are the
// mapping's, counted once; and V8 checks its limit as it adds the buffer, so
// a single 64 MiB view would cross it); `finalize` must give it back. If the
// Buffer cannot be made (e.g. a runtime that refuses external buffers),
// everything is undone and the error rethrown: the caller falls back to a copy.
template <typename Hint>
Napi::Value NewRegionView(Napi::Env env, PoolRegion* region, int64_t offset, int64_t length, bool uncounted,
                          void (*finalize)(Napi::Env, uint8_t*, Hint*), Hint* hint) {
  int64_t ignored;
  if (uncounted) napi_adjust_external_memory(env, -length, &ignored);
  try {
    return Napi::Buffer<uint8_t>::New(env, region->base() + offset, static_cast<size_t>(length), finalize, hint);
  } catch (...) {
    if (uncounted) napi_adjust_external_memory(env, length, &ignored);
    delete hint;
    region->Unref();
    throw;
  }
}

}  // namespace xenring
