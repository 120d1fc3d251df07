// Notifier: the one seam through which a ring endpoint wakes its peer and
// consumes its own wake-ups. The ring knows nothing of eventfds or event
// channels; each transport supplies an implementation (local_primitives.cc:
// eventfds; xen_devices.cc: the evtchn device) wrapped in a NotifierHandle,
// which JS passes to RingEndpoint.setNotifier().
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>

namespace xenring {

class Notifier {
 public:
  virtual ~Notifier() = default;
  // Wakes the peer. Returns 0 or an errno. A wake-up that is already pending
  // counts as success: the peer will look at the ring anyway.
  virtual int Kick() = 0;
  // Consumes our pending wake-ups (and re-arms them). Returns how many were
  // consumed (0: none pending), or -errno.
  virtual int64_t Ack() = 0;
  // The fd that polls readable when we are woken (the channel watches it).
  virtual int WaitFd() const = 0;
};

// JS handle owning one Notifier. Made only by the transports' factories
// (NotifierHandle::Wrap); fds stay owned by the transport's link.
class NotifierHandle : public Napi::ObjectWrap<NotifierHandle> {
 public:
  static Napi::Function Init(Napi::Env env, Napi::FunctionReference* ctor);
  explicit NotifierHandle(const Napi::CallbackInfo& info);

  static Napi::Object Wrap(Napi::Env env, std::unique_ptr<Notifier> impl);
  // nullptr unless `v` is a filled NotifierHandle. (Not named Unwrap: that
  // would hide ObjectWrap::Unwrap, which the method wrappers call.)
  static NotifierHandle* FromValue(Napi::Value v);

  Notifier* get() const { return impl_.get(); }

 private:
  Napi::Value Kick(const Napi::CallbackInfo& info);
  Napi::Value Ack(const Napi::CallbackInfo& info);
  Napi::Value WaitFd(const Napi::CallbackInfo& info);

  std::unique_ptr<Notifier> impl_;
};

// Throws the errno of a failed Kick()/Ack() as a Node-style error.
void ThrowIfNotifyFailed(Napi::Env env, int64_t rc, const char* syscall);

}  // namespace xenring
