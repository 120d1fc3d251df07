#include "pool_mapping.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "addon_data.h"
#include "errors.h"
#include "fast_copy.h"
#include "pool_queue.h"
#include "region_view.h"

namespace xenring {

namespace {
std::atomic<int64_t> g_alive{0};
// Marks objects made by our constructor, so Acquire() never unwraps a
// look-alike (napi type tags need no per-env state).
const napi_type_tag kPoolMappingTag = {0x78656e72696e6770ull, 0x6f6f6c6d61707031ull};

// A view's pages are the mapping's, already counted when it was made: V8
// would otherwise count every view as fresh external memory and, with views
// of many MiB made per message, start a full GC every few messages (measured:
// ~1 ms each, most of a 16 MiB hand-off). The view takes its length back off
// V8's external count when made and gives it back when collected, so the
// count stays what V8 itself adds and removes for the buffer.
struct ViewHint {
  PoolRegion* region;
  int64_t length;
};

void DropViewRef(napi_env env, void* data, void* arg) {
  auto* hint = static_cast<ViewHint*>(arg);
  int64_t ignored;
  napi_adjust_external_memory(env, hint->length, &ignored);
  hint->region->ViewGone(data);
  hint->region->Unref();
  delete hint;
}
}  // namespace

PoolRegion::PoolRegion(uint8_t* base, size_t length, AddonData* owner) : base_(base), length_(length) {
  g_alive.fetch_add(1, std::memory_order_relaxed);
  try {
    owner->regions.insert(this);
    owner_ = owner;
  } catch (...) {
    // Out of memory: untracked, it is still unmapped by its last holder.
  }
}

PoolRegion::~PoolRegion() { Unmap(); }

void PoolRegion::Unmap() {
  if (base_ == nullptr) return;
  munmap(base_, length_);
  base_ = nullptr;
  g_alive.fetch_sub(1, std::memory_order_relaxed);
  if (owner_ != nullptr) owner_->regions.erase(this);
  owner_ = nullptr;
}

void PoolRegion::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

int64_t PoolRegion::Alive() { return g_alive.load(std::memory_order_relaxed); }

void PoolRegion::NoteDetached(const void* data) {
  std::lock_guard<std::mutex> lock(detached_mu_);
  try {
    detached_.push_back(data);
  } catch (...) {
    // Out of memory: it counts as a holder until its finalizer runs (the
    // region is then only not recycled).
  }
}

void PoolRegion::ViewGone(const void* data) {
  std::lock_guard<std::mutex> lock(detached_mu_);
  // Any one entry for this address: should a live view of the same extent
  // go first, a detached one is counted live until it goes (never the reverse).
  auto it = std::find(detached_.begin(), detached_.end(), data);
  if (it == detached_.end()) return;
  *it = detached_.back();
  detached_.pop_back();
}

int PoolRegion::LiveHolders() {
  std::lock_guard<std::mutex> lock(detached_mu_);
  return refs() - 1 - static_cast<int>(detached_.size());
}

Napi::Function PoolMapping::Init(Napi::Env env) {
  return DefineClass(env, "PoolMapping",
                     {InstanceAccessor("length", &PoolMapping::Length, nullptr),
                      InstanceAccessor("holders", &PoolMapping::Holders, nullptr),
                      InstanceMethod("view", &PoolMapping::View),
                      InstanceMethod("read", &PoolMapping::Read),
                      InstanceMethod("write", &PoolMapping::Write),
                      InstanceMethod("close", &PoolMapping::Close)});
}

// new PoolMapping(fd, length, writable, offset = 0): mmap MAP_SHARED.
// new PoolMapping(undefined) is used by Adopt() (and is a closed mapping if
// JS makes one).
PoolMapping::PoolMapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PoolMapping>(info) {
  GuardConstructor(info.Env(), [&] {
    Napi::Env env = info.Env();
    if (info.Length() >= 1 && info[0].IsUndefined()) return;
    int fd = FdArg(info, 0);
    int64_t length = IntArg(info, 1, "length", 1, int64_t(1) << 36);
    bool writable = info.Length() > 2 && info[2].ToBoolean();
    int64_t offset = info.Length() > 3 && !info[3].IsUndefined() ? IntArg(info, 3, "offset", 0, int64_t(1) << 50) : 0;
    if (offset % 4096 != 0) ThrowRange(env, "The value of \"offset\" must be page-aligned");
    // Tagged before mapping: once a worker is being terminated every N-API
    // call that may run JS fails, and nothing may fail once the pages are
    // mapped (region_ is set last).
    info.This().As<Napi::Object>().TypeTag(&kPoolMappingTag);
    AddonData* owner = GetAddonData(env);
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void* p = mmap(nullptr, static_cast<size_t>(length), prot, MAP_SHARED, fd, static_cast<off_t>(offset));
    if (p == MAP_FAILED) ThrowErrno(env, errno, "mmap");
    region_ = new PoolRegion(static_cast<uint8_t*>(p), static_cast<size_t>(length), owner);
    length_ = static_cast<size_t>(length);
  });
}

PoolMapping::~PoolMapping() {
  if (region_ != nullptr) region_->Unref();
}

Napi::Object PoolMapping::Adopt(Napi::Env env, uint8_t* base, size_t length) {
  Napi::Object obj;
  PoolMapping* m;
  AddonData* owner;
  // Unwrap() fails too once a worker is being terminated: until region_ holds
  // the pages, unmapping them is ours.
  try {
    owner = GetAddonData(env);
    obj = owner->pool_mapping_ctor.New({env.Undefined()});
    m = ObjectWrap<PoolMapping>::Unwrap(obj);
  } catch (...) {
    munmap(base, length);
    throw;
  }
  m->region_ = new PoolRegion(base, length, owner);
  m->length_ = length;
  obj.TypeTag(&kPoolMappingTag);
  return obj;
}

PoolRegion* PoolMapping::Acquire(Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kPoolMappingTag)) return nullptr;
  PoolMapping* m = ObjectWrap<PoolMapping>::Unwrap(v.As<Napi::Object>());
  if (m == nullptr || m->region_ == nullptr) return nullptr;
  m->region_->Ref();
  return m->region_;
}

Napi::Value PoolMapping::Length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(length_));
}

// holders: live views and queues of these pages (0 once closed; whether the
// pages are still mapped after close() shows in poolRegionsAlive()). A
// detached view is none: it reaches no page, though its finalizer has yet to
// run (a loop turn later; a server's recycling asks at the next HELLO).
Napi::Value PoolMapping::Holders(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), region_ == nullptr ? 0 : region_->LiveHolders());
}

// view(offset, length) -> Buffer over [offset, offset + length) of the pages.
// Bounds are checked here whatever the caller validated: no view can reach
// outside the mapping.
Napi::Value PoolMapping::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (region_ == nullptr) ThrowCode(env, "ERR_INVALID_STATE", "pool mapping is closed");
  int64_t offset = IntArg(info, 0, "offset", 0, static_cast<int64_t>(length_) - 1);
  int64_t length = IntArg(info, 1, "length", 1, static_cast<int64_t>(length_) - offset);
  region_->Ref();
  return NewRegionView(env, region_, offset, length, true, DropViewRef, new ViewHint{region_, length});
}

namespace {
// The bytes of a Uint8Array argument.
uint8_t* BytesArg(const Napi::CallbackInfo& info, size_t i, const char* name, size_t* length) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowType(info.Env(), (std::string("The \"") + name + "\" argument must be a Uint8Array").c_str());
  Napi::Uint8Array a = info[i].As<Napi::Uint8Array>();
  *length = a.ElementLength();
  return a.Data();
}
}  // namespace

// read(offset, target, targetOffset, length): copies pool bytes into a
// private buffer (the private-copy delivery and onread), without making a view.
Napi::Value PoolMapping::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (region_ == nullptr) ThrowCode(env, "ERR_INVALID_STATE", "pool mapping is closed");
  int64_t offset = IntArg(info, 0, "offset", 0, static_cast<int64_t>(length_));
  size_t have = 0;
  uint8_t* dst = BytesArg(info, 1, "target", &have);
  int64_t at = IntArg(info, 2, "targetOffset", 0, static_cast<int64_t>(have));
  int64_t n = IntArg(info, 3, "length", 0, std::min<int64_t>(static_cast<int64_t>(have) - at,
                                                             static_cast<int64_t>(length_) - offset));
  FastCopy(dst + at, region_->base() + offset, static_cast<size_t>(n));
  return env.Undefined();
}

// write(offset, source): copies a Buffer into the pool (an ordinary write
// above the copy threshold, or into a run; the pool side is page-aligned,
// see fast_copy.h). Streaming stores: the extents cycle through far more
// memory than the cache, and the peer, not this thread, reads them.
Napi::Value PoolMapping::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (region_ == nullptr) ThrowCode(env, "ERR_INVALID_STATE", "pool mapping is closed");
  int64_t offset = IntArg(info, 0, "offset", 0, static_cast<int64_t>(length_));
  size_t n = 0;
  const uint8_t* src = BytesArg(info, 1, "source", &n);
  if (n > length_ - static_cast<size_t>(offset)) ThrowRange(env, "The source does not fit inside the mapping");
  FastCopyStreaming(region_->base() + offset, src, n);
  return env.Undefined();
}

// close(): drops this object's reference. The pages stay mapped until the
// last view and queue are gone too. Idempotent.
Napi::Value PoolMapping::Close(const Napi::CallbackInfo& info) {
  if (region_ != nullptr) region_->Unref();
  region_ = nullptr;
  return info.Env().Undefined();
}

// detachView(arrayBuffer): the pool is done with a view it made (a loan
// sent, a payload released): its bytes are gone from JS (length 0 for it and
// every view of it), so writing a sent loan can no longer change what the
// peer reads, nor can a released view show the next payload; and V8 drops
// the buffer now instead of at a GC. The finalizer then runs as for a
// collected view. The caller (JS) passes only the ArrayBuffer of a view it
// made and still tracks.
static Napi::Value DetachView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) ThrowType(env, "The \"buffer\" argument must be an ArrayBuffer");
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, info[0], &detached) == napi_ok && detached) return env.Undefined();
  void* data = nullptr;
  size_t length = 0;
  if (napi_get_arraybuffer_info(env, info[0], &data, &length) != napi_ok) data = nullptr;
  if (napi_detach_arraybuffer(env, info[0]) != napi_ok) {
    // Not detachable in this runtime: it goes back at a GC instead.
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    return env.Undefined();
  }
  // The region whose pages it viewed (mappings never overlap) no longer
  // counts it as a holder.
  if (data != nullptr && length > 0) {
    auto* at = static_cast<const uint8_t*>(data);
    for (PoolRegion* region : GetAddonData(env)->regions) {
      if (region->base() != nullptr && at >= region->base() && at < region->base() + region->length()) {
        region->NoteDetached(data);
        break;
      }
    }
  }
  return env.Undefined();
}

static Napi::Value RegionsAlive(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(PoolRegion::Alive()));
}

void InitPool(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = PoolMapping::Init(env);
  GetAddonData(env)->pool_mapping_ctor = Napi::Persistent(ctor);
  exports.Set("PoolMapping", ctor);
  exports.Set("PoolQueue", PoolQueue::Init(env));
  exports.Set("poolRegionsAlive", Napi::Function::New(env, RegionsAlive, "poolRegionsAlive"));
  exports.Set("detachView", Napi::Function::New(env, DetachView, "detachView"));
}

}  // namespace xenring
