#pragma once
#include <napi.h>

#include <cstdint>

#include "external_buffer.h"
#include "pool_mapping.h"

namespace xenring {

// A Buffer over region->base()[offset, offset + length) whose finalizer
// (`finalize`, given `hint`) drops the caller's reference on `region`. The
// caller has checked the bounds and taken that reference. `uncounted`: the
// length is taken off V8's external count first (a view's pages are the
// mapping's, counted once; and V8 checks its limit as it adds the buffer, so
// a single 64 MiB view would cross it); `finalize` must give it back. If the
// Buffer cannot be made (e.g. a runtime that refuses external buffers) the
// error is rethrown, after undoing everything unless N-API already took the
// finalizer (external_buffer.h), which then undoes it: the caller falls back
// to a copy.
template <typename Hint>
Napi::Value NewRegionView(Napi::Env env, PoolRegion* region, int64_t offset, int64_t length, bool uncounted,
                          napi_finalize finalize, Hint* hint) {
  int64_t ignored;
  if (uncounted) napi_adjust_external_memory(env, -length, &ignored);
  bool taken = false;
  try {
    return NewExternalBuffer(env, region->base() + offset, static_cast<size_t>(length), finalize, hint, &taken);
  } catch (...) {
    if (!taken) {
      if (uncounted) napi_adjust_external_memory(env, length, &ignored);
      delete hint;
      region->Unref();
    }
    throw;
  }
}

}  // namespace xenring
