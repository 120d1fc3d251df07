// Per-environment state (main thread and each worker have their own).
//
// Teardown order (worker.terminate(), process exit): JS stops first (every
// N-API call that may run JS then fails), then the environment's cleanup
// hooks run, newest first. Each Buffer over our memory has its own hook in
// Node, registered after ours, so it runs first: it detaches the Buffer (no
// JS can reach those pages again) and runs or queues its finalizer, which
// only drops a reference. Ours is registered after N-API's own, so it runs
// before the finalizers of wrapped objects: it marks the state torn down,
// closes every live FdWatcher, so no libuv callback can reach JS afterwards,
// and closes the fds this environment still owns (JS closes them normally,
// but a terminated worker never will: its peers would wait for a hang-up
// forever). It also unmaps every mapping and pool region still mapped here,
// whatever still refers to them: no JS runs after it, and the finalizers that
// follow only drop references (a reference that a native call took just
// before a termination cut it short would otherwise keep its pages mapped for
// good). N-API then runs the finalizers newest object first; this state, set
// in Init, goes last.
#pragma once
#include <napi.h>

#include <unordered_set>

namespace xenring {

class FdWatcher;
class PoolRegion;
class SharedMapping;

struct AddonData {
  Napi::FunctionReference mapping_ctor;
  Napi::FunctionReference notifier_ctor;
  Napi::FunctionReference pool_mapping_ctor;
  bool tearing_down = false;
  std::unordered_set<FdWatcher*> watchers;  // started or not, until closed
  std::unordered_set<int> fds;              // made or received here, not yet closeFd()'d
  std::unordered_set<SharedMapping*> mappings;  // mapped here, not yet unmapped
  std::unordered_set<PoolRegion*> regions;      // mapped here, not yet unmapped
};

inline AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

// An fd the local primitives created or received: closed at teardown unless
// JS closed it first with closeFd().
inline int OwnFd(Napi::Env env, int fd) {
  GetAddonData(env)->fds.insert(fd);
  return fd;
}
inline void DisownFd(Napi::Env env, int fd) { GetAddonData(env)->fds.erase(fd); }

}  // namespace xenring
