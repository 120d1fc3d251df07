#include "xen_devices.h"

namespace xenring {

void InitXenDevices(Napi::Env env, Napi::Object exports) {
  Napi::Object xen = Napi::Object::New(env);
  exports.Set("xen", xen);
}

}  // namespace xenring
