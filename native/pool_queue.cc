#include "pool_queue.h"

#include <cstring>
#include <string>

#include "errors.h"
#include "shared_view.h"

namespace xenring {

namespace {
[[noreturn]] void ThrowCorrupt(Napi::Env env, const char* what) {
  ThrowCode(env, "EPROTO", (std::string("peer corrupted the pool ") + what).c_str());
}

// Reads a non-negative integer option, or throws ERR_OUT_OF_RANGE.
uint64_t UintOption(Napi::Env env, Napi::Object o, const char* name, uint64_t lo, uint64_t hi) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) ThrowType(env, (std::string("options.") + name + " must be a number").c_str());
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(uint64_t(d)))
    ThrowRange(env, (std::string("options.") + name + " is out of range").c_str());
  return static_cast<uint64_t>(d);
}

// The caller's Uint32Array and the entries it has room for.
uint32_t* Words(Napi::Env env, const Napi::Value& v, size_t* count) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    ThrowType(env, "The \"entries\" argument must be a Uint32Array");
  Napi::Uint32Array a = v.As<Napi::Uint32Array>();
  *count = a.ElementLength();
  return a.Data();
}
}  // namespace

Napi::Function PoolQueue::Init(Napi::Env env) {
  return DefineClass(env, "PoolQueue",
                     {InstanceMethod("push", &PoolQueue::Push),
                      InstanceMethod("pop", &PoolQueue::Pop),
                      InstanceMethod("pending", &PoolQueue::Pending),
                      InstanceAccessor("index", &PoolQueue::Index, nullptr),
                      InstanceMethod("peerIndex", &PoolQueue::PeerIndex),
                      InstanceMethod("close", &PoolQueue::Close)});
}

// new PoolQueue({ mapping, offset, slots, words, role, init, limit })
//   slots: power of two in [1, 65536]; words: u32 per entry in [2, 16];
//   role: 'producer' | 'consumer'; init: zero both indices (the creator, once);
//   limit: every entry's extent must lie in [0, limit).
PoolQueue::PoolQueue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PoolQueue>(info) {
  GuardConstructor(info.Env(), [&] {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "The \"options\" argument must be of type object");
    Napi::Object o = info[0].As<Napi::Object>();
    Napi::Value role = o.Get("role");
    std::string r = role.IsString() ? role.As<Napi::String>().Utf8Value() : "";
    if (r != "producer" && r != "consumer") ThrowType(env, "options.role must be 'producer' or 'consumer'");
    producer_ = r == "producer";
    slots_ = static_cast<uint32_t>(UintOption(env, o, "slots", 1, 65536));
    if ((slots_ & (slots_ - 1)) != 0) ThrowRange(env, "options.slots must be a power of two");
    words_ = static_cast<uint32_t>(UintOption(env, o, "words", 2, 16));
    limit_ = static_cast<uint32_t>(UintOption(env, o, "limit", 1, 0xffffffffull));
    uint64_t offset = UintOption(env, o, "offset", 0, uint64_t(1) << 40);
    if (offset % 64 != 0) ThrowRange(env, "options.offset must be 64-byte aligned");
    // Every option is read before the region is taken: a throw after it (e.g.
    // any N-API call once a worker is being terminated) would keep it mapped.
    bool init = o.Get("init").ToBoolean();
    PoolRegion* region = PoolMapping::Acquire(o.Get("mapping"));
    if (region == nullptr) ThrowType(env, "options.mapping must be an open PoolMapping");
    uint64_t bytes = kEntries + uint64_t(slots_) * words_ * 4;
    if (offset + bytes > region->length()) {
      region->Unref();
      ThrowRange(env, "the queue does not fit inside its mapping");
    }
    region_ = region;
    uint8_t* at = region->base() + offset;
    prod_ = reinterpret_cast<volatile uint32_t*>(at + kProd);
    cons_ = reinterpret_cast<volatile uint32_t*>(at + kCons);
    entries_ = reinterpret_cast<volatile uint32_t*>(at + kEntries);
    if (init) {
      __atomic_store_n(prod_, 0u, __ATOMIC_RELAXED);
      __atomic_store_n(cons_, 0u, __ATOMIC_RELAXED);
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    // The shadow starts from the shared value once; afterwards only we write it.
    shadow_ = __atomic_load_n(producer_ ? prod_ : cons_, __ATOMIC_ACQUIRE);
  });
}

PoolQueue::~PoolQueue() { Release(); }

void PoolQueue::Release() {
  // The peer-index view first: no JS can read through it once the region may go.
  DetachSharedView(peer_view_);
  if (region_ != nullptr) region_->Unref();
  region_ = nullptr;
}

void PoolQueue::CheckOpen(Napi::Env env) const {
  if (region_ == nullptr) ThrowCode(env, "ERR_SOCKET_CLOSED", "pool queue is closed");
}

uint32_t PoolQueue::Queued(Napi::Env env) const {
  uint32_t prod = producer_ ? shadow_ : __atomic_load_n(prod_, __ATOMIC_ACQUIRE);  // read once
  uint32_t cons = producer_ ? __atomic_load_n(cons_, __ATOMIC_ACQUIRE) : shadow_;  // read once
  uint32_t queued = prod - cons;
  if (queued > slots_) ThrowCorrupt(env, "queue indices");
  return queued;
}

// push(entries: Uint32Array, count) -> entries queued (fewer when full; never waits).
Napi::Value PoolQueue::Push(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (!producer_) ThrowCode(env, "ERR_INVALID_STATE", "only the producer pushes");
  size_t have = 0;
  const uint32_t* src = Words(env, info.Length() > 0 ? info[0] : env.Undefined(), &have);
  uint32_t want = static_cast<uint32_t>(IntArg(info, 1, "count", 0, static_cast<int64_t>(have / words_)));
  uint32_t space = slots_ - Queued(env);
  uint32_t n = want < space ? want : space;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t slot = (shadow_ + i) & (slots_ - 1);
    volatile uint32_t* dst = entries_ + size_t(slot) * words_;
    for (uint32_t w = 0; w < words_; w++) dst[w] = src[size_t(i) * words_ + w];
  }
  if (n > 0) {
    shadow_ += n;
    __atomic_store_n(prod_, shadow_, __ATOMIC_RELEASE);
  }
  return Napi::Number::New(env, n);
}

// pop(out: Uint32Array, max) -> entries copied into `out` and consumed.
// Every extent is checked against the limit before anything is consumed.
Napi::Value PoolQueue::Pop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (producer_) ThrowCode(env, "ERR_INVALID_STATE", "only the consumer pops");
  size_t have = 0;
  uint32_t* dst = Words(env, info.Length() > 0 ? info[0] : env.Undefined(), &have);
  uint32_t max = static_cast<uint32_t>(IntArg(info, 1, "max", 0, static_cast<int64_t>(have / words_)));
  uint32_t ready = Queued(env);
  uint32_t n = max < ready ? max : ready;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t slot = (shadow_ + i) & (slots_ - 1);
    const volatile uint32_t* src = entries_ + size_t(slot) * words_;
    uint32_t* out = dst + size_t(i) * words_;
    for (uint32_t w = 0; w < words_; w++) out[w] = src[w];  // each shared word read once
    uint32_t off = out[words_ - 2], len = out[words_ - 1];
    if (len == 0 || off >= limit_ || len > limit_ - off) ThrowCorrupt(env, "extent (outside the pool)");
  }
  if (n > 0) {
    shadow_ += n;
    __atomic_store_n(cons_, shadow_, __ATOMIC_RELEASE);
  }
  return Napi::Number::New(env, n);
}

// pending() -> entries queued: for the producer, pushed but not yet popped;
// for the consumer, ready to pop.
Napi::Value PoolQueue::Pending(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), Queued(info.Env()));
}

// index: our own index (what we pushed, or popped, mod 2^32).
Napi::Value PoolQueue::Index(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), shadow_);
}

// peerIndex() -> Uint32Array(1) over the peer's index (the consumer's view of
// prod, the producer's of cons), the same one on every call. A hint only:
// see pool_queue.h. Throws where the runtime refuses external buffers.
Napi::Value PoolQueue::PeerIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (peer_view_.IsEmpty()) {
    void* word = const_cast<uint32_t*>(producer_ ? cons_ : prod_);
    // No finalizer: the buffer owns nothing; Release() detaches it.
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, word, sizeof(uint32_t));
    peer_view_.Reset(ab, 1);
  }
  return Napi::Uint32Array::New(env, 1, peer_view_.Value(), 0);
}

Napi::Value PoolQueue::Close(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

}  // namespace xenring
