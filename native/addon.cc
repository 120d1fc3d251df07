// Module entry: registers the native primitives. Layering: shared mappings,
// fd watcher and local-transport primitives at the bottom, the ring endpoint
// above them; everything else (transports, streams, sockets) is TypeScript.
#include <napi.h>

#include "addon_data.h"
#include "fd_watcher.h"
#include "local_primitives.h"
#include "pool_mapping.h"
#include "ring_endpoint.h"
#include "shared_mapping.h"
#include "vchan_layout.h"
#include "xen_devices.h"

namespace xenring {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  exports.Set("SharedMapping", SharedMapping::Init(env, &data->mapping_ctor));
  exports.Set("FdWatcher", FdWatcher::Init(env));
  exports.Set("RingEndpoint", RingEndpoint::Init(env));
  InitLocalPrimitives(env, exports);
  InitPool(env, exports);
  InitXenDevices(env, exports);
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("pageSize", static_cast<double>(vchan::kPageSize));
  layout.Set("minOrder", vchan::kMinOrder);
  layout.Set("maxXenOrder", vchan::kMaxXenOrder);
  layout.Set("maxOrder", vchan::kMaxOrder);
  exports.Set("layout", layout);
  return exports;
}

}  // namespace xenring

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return xenring::Init(env, exports); }

NODE_API_MODULE(xenring, InitAddon)
