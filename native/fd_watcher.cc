#include "fd_watcher.h"

#include <memory>

#include "errors.h"
#include "ring_endpoint.h"

namespace xenring {

namespace {

// True while JS may run in `env`: false once the environment is terminating
// (worker.terminate(), process.exit()). Clears a pending exception.
bool CanCallIntoJs(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok) return false;
  if (pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
  // Setting a property is one of the calls N-API refuses (napi_pending_exception
  // with nothing pending) once the environment may no longer run JS.
  napi_value probe;
  if (napi_create_object(env, &probe) != napi_ok) return false;
  return napi_set_named_property(env, probe, "probe", probe) == napi_ok;
}

}  // namespace

Napi::Function FdWatcher::Init(Napi::Env env) {
  return DefineClass(env, "FdWatcher",
                     {InstanceMethod("start", &FdWatcher::Start),
                      InstanceMethod("stop", &FdWatcher::Stop),
                      InstanceMethod("ref", &FdWatcher::Ref),
                      InstanceMethod("unref", &FdWatcher::Unref),
                      InstanceMethod("close", &FdWatcher::Close),
                      InstanceMethod("bindRing", &FdWatcher::BindRing),
                      InstanceMethod("setCallback", &FdWatcher::SetCallback)});
}

// new FdWatcher(fd, callback(events: number /* <0: uv error */[, read, error]))
// With a ring bound (bindRing), a readable event also passes the wake-up's
// read: the bytes it read (-1: none was armed) or the Error it threw, and
// the round (0: the wake-up; n: the n-th reply found after a callback that
// asked to sleep, see RingEndpoint::SleepOnReturn).
FdWatcher::FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
  GuardConstructor(info.Env(), [&] {
    Napi::Env env = info.Env();
    int fd = FdArg(info, 0);
    if (info.Length() < 2 || !info[1].IsFunction())
      ThrowType(env, "The \"callback\" argument must be of type function");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
      ThrowCode(env, "ERR_INTERNAL", "no event loop for this environment");
    // Everything that can throw comes before uv_poll_init: a failed
    // constructor leaves no handle behind (one left open on a worker's loop
    // aborts the process when that loop closes).
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    AddonData* data = GetAddonData(env);
    auto context = std::make_unique<Napi::AsyncContext>(env, "xenring:FdWatcher");
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowErrno(env, -rc, "uv_poll_init");
    }
    poll_->data = this;
    context_ = context.release();
    data_ = data;
    data_->watchers.insert(this);
  });
}

// During teardown the cleanup hook has already run Shutdown(), so a
// finalizer never needs the (possibly finalized) AddonData.
FdWatcher::~FdWatcher() {
  Release();
  delete context_;
}

void FdWatcher::Release() {
  if (data_ != nullptr) data_->watchers.erase(this);
  data_ = nullptr;
  if (poll_ != nullptr) {
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
}

void FdWatcher::Shutdown() { Release(); }

void FdWatcher::StopPolling() {
  if (poll_ != nullptr) uv_poll_stop(poll_);
}

void FdWatcher::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<FdWatcher*>(handle->data);
  if (self == nullptr || self->callback_.IsEmpty() || self->data_ == nullptr || self->data_->tearing_down) return;
  self->Deliver(status < 0 ? status : events);
}

// Called from libuv: no C++ exception may leave, and a failed N-API call
// is either a listener that threw or an environment that is terminating.
void FdWatcher::Deliver(int value) {
  napi_env env = Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return StopPolling();
  bool failed = false;
  napi_value thrown = nullptr;
  try {
    Napi::Value events = Napi::Number::New(env, value);
    if (ring_ != nullptr && value > 0 && (value & UV_READABLE) != 0) {
      // Round 0 is the wake-up; each later round is a reply that came before
      // the reader slept (SleepOnReturn), read and delivered without waiting
      // for the poll. JS bounds the rounds (it passes on asking to sleep).
      for (uint32_t round = 0;; round++) {
        int64_t n = -1;
        Napi::Value error = Napi::Env(env).Undefined();
        bool again = false;
        try {
          n = ring_->WakeRead(env, round == 0);
        } catch (const Napi::Error& e) {
          // The ring's error is the channel's (it fails), not a listener's.
          if (!e.IsEmpty()) error = e.Value();
        }
        callback_.MakeCallback(Value(), {events, Napi::Number::New(env, static_cast<double>(n)), error,
                                         Napi::Number::New(env, round)}, *context_);
        if (ring_ == nullptr || !error.IsUndefined()) break;  // closed by the callback, or failed
        try {
          again = ring_->SleepOnReturn(env);
        } catch (const Napi::Error&) {
          again = true;  // the next round's read meets the same error and reports it
        }
        if (!again) break;
      }
    } else {
      callback_.MakeCallback(Value(), {events}, *context_);
    }
  } catch (const Napi::Error& e) {
    failed = true;
    try {
      if (!e.IsEmpty()) thrown = e.Value();
    } catch (...) {
    }
  } catch (...) {
    failed = true;
  }
  if (failed) {
    if (thrown != nullptr && CanCallIntoJs(env))
      napi_fatal_exception(env, thrown);  // a throwing listener: 'uncaughtException', as in core
    else
      StopPolling();  // JS is gone: nothing to tell, and the fd would fire again
  }
  napi_close_handle_scope(env, scope);
}

// bindRing(endpoint | null): a readable event first does the read the
// endpoint's reader armed (RingEndpoint::WakeRead) and passes its result.
Napi::Value FdWatcher::BindRing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ring_ = nullptr;
  if (!ring_ref_.IsEmpty()) ring_ref_.Reset();
  if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) return env.Undefined();
  RingEndpoint* ep = RingEndpoint::FromValue(info[0]);
  if (ep == nullptr) ThrowType(env, "The \"endpoint\" argument must be a RingEndpoint or null");
  ring_ref_.Reset(info[0].As<Napi::Object>(), 1);
  ring_ = ep;
  return env.Undefined();
}

// start(events): UV_READABLE=1 | UV_WRITABLE=2 | UV_DISCONNECT=4
Napi::Value FdWatcher::Start(const Napi::CallbackInfo& info) {
  if (poll_ == nullptr) ThrowCode(info.Env(), "ERR_SOCKET_CLOSED", "watcher is closed");
  int events = static_cast<int>(IntArg(info, 0, "events", 1, 7));
  // Already polling for these: uv_poll_start would stop and start again, an
  // epoll_ctl DEL and ADD for nothing (a watcher handed on: setCallback).
  // (libuv stops a handle whose poll failed: then it is started again.)
  if (active_ && events == events_ && uv_is_active(reinterpret_cast<uv_handle_t*>(poll_))) return info.Env().Undefined();
  int rc = uv_poll_start(poll_, events, OnPoll);
  if (rc != 0) ThrowErrno(info.Env(), -rc, "uv_poll_start");
  events_ = events;
  if (!active_) {
    active_ = true;
    ObjectWrap::Ref();
  }
  return info.Env().Undefined();
}

// setCallback(callback): later events go to `callback` (a watcher handed from
// one owner to the next keeps its poll handle: no new uv_poll_init).
Napi::Value FdWatcher::SetCallback(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowType(info.Env(), "The \"callback\" argument must be of type function");
  callback_ = Napi::Persistent(info[0].As<Napi::Function>());
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
  // uv_close() stops the poll itself: uv_poll_stop() first took the fd out
  // of epoll once, and uv_close() then tried again (a failing epoll_ctl per
  // watcher, five per new connection).
  if (active_) {
    active_ = false;
    ObjectWrap::Unref();
  }
  Release();
  ring_ = nullptr;
  if (!ring_ref_.IsEmpty()) ring_ref_.Reset();
  callback_.Reset();  // the async context lives until the finalizer: close() may run inside the callback
  return info.Env().Undefined();
}

}  // namespace xenring
