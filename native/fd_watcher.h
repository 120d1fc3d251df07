// FdWatcher: a uv_poll_t on the calling environment's loop (so worker threads
// work) that calls back into JS through MakeCallback with an async context.
// JS owns all policy; this only reports readiness, and (bindRing()) does the
// read a woken ring reader armed before calling JS, so a wake-up costs one
// crossing, as libuv streams hand onread the bytes (RingEndpoint::WakeRead).
//
// It never calls into an environment that is going away: a callback that
// finds JS terminating stops the poll, and the environment's cleanup hook
// (addon.cc) closes every watcher before the finalizers run.
#pragma once
#include <napi.h>
#include <uv.h>

#include "addon_data.h"

namespace xenring {
class RingEndpoint;
}

namespace xenring {

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit FdWatcher(const Napi::CallbackInfo& info);
  ~FdWatcher() override;

  // Environment teardown: close the poll handle; no JS is touched.
  void Shutdown();

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value BindRing(const Napi::CallbackInfo& info);
  Napi::Value SetCallback(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Deliver(int value);
  void StopPolling();
  void Release();

  uv_poll_t* poll_ = nullptr;  // freed in the uv_close callback
  Napi::FunctionReference callback_;
  RingEndpoint* ring_ = nullptr;  // bindRing(): kept alive by ring_ref_
  Napi::ObjectReference ring_ref_;
  Napi::AsyncContext* context_ = nullptr;
  AddonData* data_ = nullptr;  // set while registered in data_->watchers
  bool active_ = false;   // started: holds a strong reference to the JS object
  int events_ = 0;        // what it polls for while active_
  bool refed_ = true;
};

}  // namespace xenring
