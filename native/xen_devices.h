// Bindings over the Linux Xen devices (/dev/xen/gntalloc, gntdev, evtchn,
// xenbus), exported as `xen` on the addon object. They compile from the uapi
// headers alone and load on a host without Xen (opening a device then fails
// with ENOENT).
#pragma once
#include <napi.h>

namespace xenring {
void InitXenDevices(Napi::Env env, Napi::Object exports);
}
