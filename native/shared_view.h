// Views of shared memory handed to JS that own nothing (no finalizer): the
// owner detaches them before the memory may go.
#pragma once
#include <napi.h>

namespace xenring {

// Detaches and forgets such a view: no JS reads the memory through it after
// this. False if it could not be detached (only while the environment is
// being torn down, when no JS runs any more).
inline bool DetachSharedView(Napi::Reference<Napi::ArrayBuffer>& ref) {
  if (ref.IsEmpty()) return true;
  bool detached = false;
  try {
    Napi::ArrayBuffer ab = ref.Value();
    if (!ab.IsDetached()) ab.Detach();
    detached = true;
  } catch (...) {
  }
  ref.Reset();
  return detached;
}

}  // namespace xenring
