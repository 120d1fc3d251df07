// Fuzz-build stand-ins for what the compiled addon files take from Node and
// from native/shared_mapping.cc: uv_err_name, and a SharedMapping over
// harness-owned memory (exact-size heap blocks, so ASan sees any access
// outside them; mmap'd pages would hide an overrun inside the page).
#include <string.h>

#include "../../../native/addon_data.h"
#include "../../../native/shared_mapping.h"

extern "C" const char* uv_err_name(int err) {
  const char* name = strerrorname_np(-err);
  return name != nullptr ? name : "UNKNOWN";
}

namespace xenring {

Napi::Function SharedMapping::Init(Napi::Env env, Napi::FunctionReference* ctor) {
  Napi::Function f = DefineClass(env, "SharedMapping", {});
  *ctor = Napi::Persistent(f);
  return f;
}

// new SharedMapping(view: TypedArray, writable: boolean): the view's memory,
// owned by the harness.
SharedMapping::SharedMapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SharedMapping>(info) {
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  base_ = static_cast<uint8_t*>(view.ArrayBuffer().Data());
  length_ = view.ByteLength();
  writable_ = info[1].ToBoolean();
}

SharedMapping::~SharedMapping() { Release(); }

void SharedMapping::Release() {
  base_ = nullptr;
  length_ = 0;
}

// No shared first-page view here: each endpoint makes its own pool word
// view (RingEndpoint::PoolWord's fallback), over the harness's block.
Napi::Value SharedMapping::FirstPageWord(Napi::Env env, size_t offset) { return env.Undefined(); }

SharedMapping* SharedMapping::Unwrap(Napi::Value v) {
  if (!v.IsObject()) return nullptr;
  Napi::Object o = v.As<Napi::Object>();
  if (!o.InstanceOf(GetAddonData(v.Env())->mapping_ctor.Value())) return nullptr;
  return ObjectWrap<SharedMapping>::Unwrap(o);
}

}  // namespace xenring
