// Module entry: registers the native primitives. Layering: shared mappings,
// fd watcher and local-transport primitives at the bottom, the ring endpoint
// above them; everything else (transports, streams, sockets) is TypeScript.
#include <dlfcn.h>
#include <napi.h>
#include <unistd.h>

#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "fd_watcher.h"
#include "local_primitives.h"
#include "notifier.h"
#include "pool_mapping.h"
#include "returned_buffers.h"
#include "ring_endpoint.h"
#include "shared_mapping.h"
#include "vchan_layout.h"
#include "xen_devices.h"

namespace xenring {

namespace {

// Runs before N-API's own teardown (see addon_data.h): from here on no native
// object may call into JS, and every poll handle is closed while the loop that
// owns it still runs its close callbacks.
void TearDown(void* arg) {
  auto* data = static_cast<AddonData*>(arg);
  data->tearing_down = true;
  auto watchers = data->watchers;  // Shutdown() unregisters
  for (FdWatcher* w : watchers) w->Shutdown();
  for (int fd : data->fds) close(fd);
  data->fds.clear();
  // Release() and Unmap() leave their lists.
  std::vector<SharedMapping*> mappings(data->mappings.begin(), data->mappings.end());
  for (SharedMapping* m : mappings) m->Release();
  std::vector<PoolRegion*> regions(data->regions.begin(), data->regions.end());
  for (PoolRegion* r : regions) r->Unmap();
}

// Node unloads an addon when the last environment that loaded it goes away
// (a worker that alone used xenring), while that worker's loop still runs the
// close callbacks of our poll handles: code that would no longer be mapped.
// One extra, never-released reference keeps the library loaded.
void PinLibrary() {
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&PinLibrary), &self) != 0 && self.dli_fname != nullptr)
    dlopen(self.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  PinLibrary();
  auto* data = new AddonData();
  env.SetInstanceData(data);
  if (napi_add_env_cleanup_hook(env, TearDown, data) != napi_ok)
    ThrowCode(env, "ERR_INTERNAL", "cannot register the environment cleanup hook");
  exports.Set("SharedMapping", SharedMapping::Init(env, &data->mapping_ctor));
  exports.Set("FdWatcher", FdWatcher::Init(env));
  exports.Set("RingEndpoint", RingEndpoint::Init(env));
  exports.Set("bindRingMethods", BindRingMethodsFunction(env));
  exports.Set("Notifier", NotifierHandle::Init(env, &data->notifier_ctor));
  InitLocalPrimitives(env, exports);
  InitPool(env, exports);
  InitReturnedBuffers(env, exports);
  InitXenDevices(env, exports);
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("pageSize", static_cast<double>(vchan::kPageSize));
  layout.Set("minOrder", vchan::kMinOrder);
  layout.Set("maxXenOrder", vchan::kMaxXenOrder);
  layout.Set("maxOrder", vchan::kMaxOrder);
  // The control page, so that TypeScript checks its own copy at load
  // (lib/ring/vchan_state.ts) instead of trusting it to match.
  auto set = [&](const char* k, double v) { layout.Set(k, v); };
  set("leftCons", vchan::kLeftCons);
  set("leftProd", vchan::kLeftProd);
  set("rightCons", vchan::kRightCons);
  set("rightProd", vchan::kRightProd);
  set("leftOrder", vchan::kLeftOrder);
  set("rightOrder", vchan::kRightOrder);
  set("cliLive", vchan::kCliLive);
  set("srvLive", vchan::kSrvLive);
  set("cliNotify", vchan::kCliNotify);
  set("srvNotify", vchan::kSrvNotify);
  set("grants", vchan::kGrants);
  set("extMagic", vchan::kExtMagic);
  set("extCliFin", vchan::kExtCliFin);
  set("extSrvFin", vchan::kExtSrvFin);
  set("extCliPool", vchan::kExtCliPool);
  set("extSrvPool", vchan::kExtSrvPool);
  set("liveGone", vchan::kLiveGone);
  set("liveConnected", vchan::kLiveConnected);
  set("liveWaiting", vchan::kLiveWaiting);
  set("notifyWrite", vchan::kNotifyWrite);
  set("notifyRead", vchan::kNotifyRead);
  exports.Set("layout", layout);
  return exports;
}

}  // namespace xenring

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return xenring::Init(env, exports); }

NODE_API_MODULE(xenring, InitAddon)
