// Fuzz-build stand-in for native/pool_mapping.cc: a PoolMapping over
// harness-owned memory (an exact-size heap block), with the real reference
// counting of PoolRegion but no mmap/munmap.
#include "../../../native/pool_mapping.h"

namespace xenring {

namespace {
std::atomic<int64_t> g_alive{0};
Napi::FunctionReference g_class;  // Acquire() unwraps only objects of this class
}  // namespace

PoolRegion::PoolRegion(uint8_t* base, size_t length, AddonData*) : base_(base), length_(length) {
  g_alive.fetch_add(1, std::memory_order_relaxed);
}

PoolRegion::~PoolRegion() { Unmap(); }

// The harness owns the memory: nothing to unmap, only the count.
void PoolRegion::Unmap() {
  if (base_ == nullptr) return;
  base_ = nullptr;
  g_alive.fetch_sub(1, std::memory_order_relaxed);
}

void PoolRegion::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

int64_t PoolRegion::Alive() { return g_alive.load(std::memory_order_relaxed); }

Napi::Function PoolMapping::Init(Napi::Env env) {
  Napi::Function f = DefineClass(env, "PoolMapping", {});
  g_class = Napi::Persistent(f);
  return f;
}

// new PoolMapping(view: TypedArray): the view's memory, owned by the harness.
PoolMapping::PoolMapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PoolMapping>(info) {
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  region_ = new PoolRegion(static_cast<uint8_t*>(view.ArrayBuffer().Data()), view.ByteLength(), nullptr);
  length_ = view.ByteLength();
}

PoolMapping::~PoolMapping() {
  if (region_ != nullptr) region_->Unref();
}

PoolRegion* PoolMapping::Acquire(Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(g_class.Value())) return nullptr;
  PoolMapping* m = ObjectWrap<PoolMapping>::Unwrap(v.As<Napi::Object>());
  if (m == nullptr || m->region_ == nullptr) return nullptr;
  m->region_->Ref();
  return m->region_;
}

}  // namespace xenring
