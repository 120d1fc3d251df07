// bindRingMethods(endpoint) -> bound: makes the endpoint's per-message methods (read,
// write, waitData, service) own properties of that instance, each a function
// bound to it. A prototype method finds its C++ object with napi_unwrap, a
// property lookup that was about a third of a small call (issue 10 item 7);
// a bound function gets it from its own data pointer. Each function keeps
// its endpoint alive (a hidden reference), so it can never outlive the
// object it points to. The prototype methods stay (and are what the fuzz
// target drives): the bound ones run the same member functions.
#include <napi.h>

#include "ring_endpoint.h"

namespace xenring {

// Here, not in ring_endpoint.cc: the fuzz build of that file has no napi_unwrap.
RingEndpoint* RingEndpoint::FromValue(Napi::Value v) {
  if (!v.IsObject()) return nullptr;
  Napi::Object o = v.As<Napi::Object>();
  // The tag, not instanceof: an object of another native class given this
  // prototype has a wrap too, whose C++ object is no RingEndpoint.
  if (!o.CheckTypeTag(&kTag)) return nullptr;
  // Not Napi's Unwrap (it throws), whatever the tag says.
  void* ep = nullptr;
  if (napi_unwrap(v.Env(), o, &ep) != napi_ok) return nullptr;
  return static_cast<RingEndpoint*>(ep);
}

struct BoundRingMethods {
  template <Napi::Value (RingEndpoint::*M)(const Napi::CallbackInfo&)>
  static Napi::Value Call(const Napi::CallbackInfo& info) {
    return (static_cast<RingEndpoint*>(info.Data())->*M)(info);
  }

  template <Napi::Value (RingEndpoint::*M)(const Napi::CallbackInfo&)>
  static void Bind(Napi::Env env, Napi::Object self, RingEndpoint* ep, const char* name) {
    // An own property already there (a test's spy, bench/crossings.js's
    // counter) stays: it calls the prototype method.
    if (self.HasOwnProperty(name)) return;
    Napi::Function f = Napi::Function::New<Call<M>>(env, name, ep);
    // The function holds its endpoint, so the C++ object outlives every call.
    f.DefineProperty(Napi::PropertyDescriptor::Value("endpoint", self, napi_default));
    // Configurable: a test may still put a spy in its place.
    self.DefineProperty(Napi::PropertyDescriptor::Value(name, f, napi_configurable));
  }

  // -> true, or false (nothing done) for anything that is not a RingEndpoint (a test's fake).
  static Napi::Value Install(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) return Napi::Boolean::New(env, false);
    Napi::Object self = info[0].As<Napi::Object>();
    RingEndpoint* endpoint = RingEndpoint::FromValue(self);
    if (endpoint == nullptr) return Napi::Boolean::New(env, false);
    Bind<&RingEndpoint::Read>(env, self, endpoint, "read");
    Bind<&RingEndpoint::Write>(env, self, endpoint, "write");
    Bind<&RingEndpoint::WaitData>(env, self, endpoint, "waitData");
    Bind<&RingEndpoint::Service>(env, self, endpoint, "service");
    return Napi::Boolean::New(env, true);
  }
};

Napi::Function BindRingMethodsFunction(Napi::Env env) {
  return Napi::Function::New<BoundRingMethods::Install>(env, "bindRingMethods");
}

}  // namespace xenring
