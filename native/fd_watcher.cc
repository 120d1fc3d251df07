#include "fd_watcher.h"

#include "errors.h"

namespace xenring {

Napi::Function FdWatcher::Init(Napi::Env env) {
  return DefineClass(env, "FdWatcher",
                     {InstanceMethod("start", &FdWatcher::Start),
                      InstanceMethod("stop", &FdWatcher::Stop),
                      InstanceMethod("ref", &FdWatcher::Ref),
                      InstanceMethod("unref", &FdWatcher::Unref),
                      InstanceMethod("close", &FdWatcher::Close)});
}

// new FdWatcher(fd, callback(events: number /* <0: uv error */))
FdWatcher::FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (info.Length() < 2 || !info[1].IsFunction())
    ThrowType(env, "The \"callback\" argument must be of type function");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    ThrowCode(env, "ERR_INTERNAL", "no event loop for this environment");
  poll_ = new uv_poll_t;
  int rc = uv_poll_init(loop, poll_, fd);
  if (rc != 0) {
    delete poll_;
    poll_ = nullptr;
    ThrowErrno(env, -rc, "uv_poll_init");
  }
  poll_->data = this;
  callback_ = Napi::Persistent(info[1].As<Napi::Function>());
  context_ = new Napi::AsyncContext(env, "xenring:FdWatcher");
}

FdWatcher::~FdWatcher() { Release(); }

void FdWatcher::Release() {
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  delete context_;
  context_ = nullptr;
}

void FdWatcher::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<FdWatcher*>(handle->data);
  if (self == nullptr || self->callback_.IsEmpty()) return;
  Napi::Env env = self->Env();
  Napi::HandleScope scope(env);
  int value = status < 0 ? status : events;
  try {
    self->callback_.MakeCallback(self->Value(), {Napi::Number::New(env, value)}, *self->context_);
  } catch (const Napi::Error& e) {
    // A throwing listener must surface as 'uncaughtException', as in core.
    napi_fatal_exception(env, e.Value());
  }
}

// start(events): UV_READABLE=1 | UV_WRITABLE=2 | UV_DISCONNECT=4
Napi::Value FdWatcher::Start(const Napi::CallbackInfo& info) {
  if (poll_ == nullptr) ThrowCode(info.Env(), "ERR_SOCKET_CLOSED", "watcher is closed");
  int events = static_cast<int>(IntArg(info, 0, "events", 1, 7));
  int rc = uv_poll_start(poll_, events, OnPoll);
  if (rc != 0) ThrowErrno(info.Env(), -rc, "uv_poll_start");
  if (!active_) {
    active_ = true;
    ObjectWrap::Ref();
  }
  return info.Env().Undefined();
}

Napi::Value FdWatcher::Stop(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_poll_stop(poll_);
  if (active_) {
    active_ = false;
    ObjectWrap::Unref();
  }
  return info.Env().Undefined();
}

Napi::Value FdWatcher::Ref(const Napi::CallbackInfo& info) {
  refed_ = true;
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

Napi::Value FdWatcher::Unref(const Napi::CallbackInfo& info) {
  refed_ = false;
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

// The fd itself is not closed: its owner closes it after close().
Napi::Value FdWatcher::Close(const Napi::CallbackInfo& info) {
  Stop(info);
  Release();
  callback_.Reset();
  return info.Env().Undefined();
}

}  // namespace xenring
