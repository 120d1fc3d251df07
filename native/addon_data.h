// Per-environment state (main thread and each worker have their own).
#pragma once
#include <napi.h>

namespace xenring {
struct AddonData {
  Napi::FunctionReference mapping_ctor;
  Napi::FunctionReference notifier_ctor;
};
inline AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }
}  // namespace xenring
