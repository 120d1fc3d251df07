// Module entry: registers the native primitives. Layering: shared mappings,
// fd watcher and local-transport primitives at the bottom, the ring endpoint
// above them; everything else (transports, streams, sockets) is TypeScript.
#include <napi.h>

#include "addon_data.h"
#include "fd_watcher.h"
#include "local_primitives.h"
#include "notifier.h"
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
  exports.Set("Notifier", NotifierHandle::Init(env, &data->notifier_ctor));
  InitLocalPrimitives(env, exports);
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
