// Views of shared memory handed to JS that own nothing (no finalizer): the
// owner detaches them before the memory may go.
#pragma once
#include <napi.h>

namespace xenring {

// Detaches and forgets such a view: no JS reads the memory through it after this.
inline void DetachSharedView(Napi::Reference<Napi::ArrayBuffer>& ref) {
  if (ref.IsEmpty()) return;
  try {
    Napi::ArrayBuffer ab = ref.Value();
    if (!ab.IsDetached()) ab.Detach();
  } catch (...) {
    // Only when the environment is being torn down: no JS runs after that.
  }
  ref.Reset();
}

}  // namespace xenring
