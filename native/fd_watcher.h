// FdWatcher: a uv_poll_t on the calling environment's loop (so worker threads
// work) that calls back into JS through MakeCallback with an async context.
// JS owns all policy; this only reports readiness.
#pragma once
#include <napi.h>
#include <uv.h>

namespace xenring {

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit FdWatcher(const Napi::CallbackInfo& info);
  ~FdWatcher() override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Release();

  uv_poll_t* poll_ = nullptr;  // freed in the uv_close callback
  Napi::FunctionReference callback_;
  Napi::AsyncContext* context_ = nullptr;
  bool active_ = false;   // started: holds a strong reference to the JS object
  bool refed_ = true;
};

}  // namespace xenring
