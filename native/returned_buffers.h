// Buffers whose memory comes back to us when V8 collects them: receive slabs
// reused while still mapped and faulted in (SlabRecycler), and views of pool
// extents that report their own death so the extent can go back to the peer
// (ViewReturns). Both rely on a Buffer's own finalizer, which runs after a
// minor GC (scavenge) too; a FinalizationRegistry does not (V8's scavenger
// keeps its targets alive), so only a full GC would return those.
#pragma once
#include <napi.h>

namespace xenring {

// Registers SlabRecycler and ViewReturns on `exports`.
void InitReturnedBuffers(Napi::Env env, Napi::Object exports);

}  // namespace xenring
