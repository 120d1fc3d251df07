#include "notifier.h"

#include "addon_data.h"
#include "errors.h"

namespace xenring {

namespace {
// Marks handles made by our constructor: FromValue() takes nothing else (an
// instanceof test let through objects of other native classes given this
// prototype, whose C++ objects are no NotifierHandle).
const napi_type_tag kNotifierTag = {0x78656e72696e676eull, 0x6f74696669657231ull};
}  // namespace

Napi::Function NotifierHandle::Init(Napi::Env env, Napi::FunctionReference* ctor) {
  Napi::Function f = DefineClass(env, "Notifier",
                                 {InstanceMethod("kick", &NotifierHandle::Kick),
                                  InstanceMethod("ack", &NotifierHandle::Ack),
                                  InstanceAccessor("waitFd", &NotifierHandle::WaitFd, nullptr)});
  *ctor = Napi::Persistent(f);
  return f;
}

// Constructed from JS this is an empty handle that every use rejects; the
// transports fill it through Wrap().
NotifierHandle::NotifierHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NotifierHandle>(info) {
  GuardConstructor(info.Env(), [&] { info.This().As<Napi::Object>().TypeTag(&kNotifierTag); });
}

Napi::Object NotifierHandle::Wrap(Napi::Env env, std::unique_ptr<Notifier> impl) {
  Napi::Object obj = GetAddonData(env)->notifier_ctor.New({});
  ObjectWrap<NotifierHandle>::Unwrap(obj)->impl_ = std::move(impl);
  return obj;
}

NotifierHandle* NotifierHandle::FromValue(Napi::Value v) {
  if (!v.IsObject()) return nullptr;
  Napi::Object o = v.As<Napi::Object>();
  if (!o.CheckTypeTag(&kNotifierTag)) return nullptr;
  NotifierHandle* h = ObjectWrap<NotifierHandle>::Unwrap(o);
  return h != nullptr && h->impl_ ? h : nullptr;
}

void ThrowIfNotifyFailed(Napi::Env env, int64_t rc, const char* syscall) {
  if (rc < 0) ThrowErrno(env, static_cast<int>(-rc), syscall);
}

Napi::Value NotifierHandle::Kick(const Napi::CallbackInfo& info) {
  if (!impl_) ThrowCode(info.Env(), "ERR_INVALID_STATE", "notifier is empty");
  int err = impl_->Kick();
  if (err != 0) ThrowErrno(info.Env(), err, "kick");
  return info.Env().Undefined();
}

Napi::Value NotifierHandle::Ack(const Napi::CallbackInfo& info) {
  if (!impl_) ThrowCode(info.Env(), "ERR_INVALID_STATE", "notifier is empty");
  int64_t n = impl_->Ack();
  ThrowIfNotifyFailed(info.Env(), n, "ack");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value NotifierHandle::WaitFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), impl_ ? impl_->WaitFd() : -1);
}

}  // namespace xenring
