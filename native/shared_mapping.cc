#include "shared_mapping.h"

#include <sys/mman.h>

#include <cerrno>

#include "addon_data.h"
#include "errors.h"
#include "shared_view.h"

namespace xenring {

namespace {
// Marks objects made by our constructor: Unwrap() takes nothing else. An
// instanceof test let an object of another native class through (one given
// this prototype, or any object once Symbol.hasInstance is redefined), and
// its C++ object was then used as a mapping: a ring over a heap object.
const napi_type_tag kSharedMappingTag = {0x78656e72696e6773ull, 0x686d617070696e31ull};
}  // namespace

Napi::Function SharedMapping::Init(Napi::Env env, Napi::FunctionReference* ctor) {
  Napi::Function f = DefineClass(env, "SharedMapping",
                                 {InstanceAccessor("length", &SharedMapping::Length, nullptr),
                                  InstanceMethod("unmap", &SharedMapping::Unmap),
                                  InstanceMethod("readByte", &SharedMapping::ReadByte),
                                  InstanceMethod("casByte", &SharedMapping::CasByte)});
  *ctor = Napi::Persistent(f);
  return f;
}

// new SharedMapping(fd, length, writable, offset = 0)
// new SharedMapping(undefined) is used by Adopt() to wrap an existing mapping.
SharedMapping::SharedMapping(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SharedMapping>(info) {
  GuardConstructor(info.Env(), [&] {
    // Tagged first, as PoolMapping: nothing may fail once the pages are mapped.
    info.This().As<Napi::Object>().TypeTag(&kSharedMappingTag);
    if (info.Length() >= 1 && info[0].IsUndefined()) return;
    Napi::Env env = info.Env();
    int fd = FdArg(info, 0);
    int64_t length = IntArg(info, 1, "length", 1, int64_t(1) << 40);
    bool writable = info.Length() > 2 && info[2].ToBoolean();
    int64_t offset = info.Length() > 3 && !info[3].IsUndefined()
                         ? IntArg(info, 3, "offset", 0, int64_t(1) << 50) : 0;
    if (offset % 4096 != 0) ThrowRange(env, "The value of \"offset\" must be page-aligned");
    AddonData* owner = GetAddonData(env);
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    void* p = mmap(nullptr, static_cast<size_t>(length), prot, MAP_SHARED, fd, static_cast<off_t>(offset));
    if (p == MAP_FAILED) ThrowErrno(env, errno, "mmap");
    base_ = static_cast<uint8_t*>(p);
    length_ = static_cast<size_t>(length);
    writable_ = writable;
    Track(owner);
  });
}

SharedMapping::~SharedMapping() { Release(); }

// readByte(offset) -> the byte there, read once (the peer may be writing it).
// A kept ring's live bytes (lib/transports/local_reuse.ts): whether the peer
// closed its side. Nothing else of the pages reaches JS.
Napi::Value SharedMapping::ReadByte(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t offset = IntArg(info, 0, "offset", 0, int64_t(1) << 50);
  if (base_ == nullptr) ThrowCode(env, "ERR_INVALID_STATE", "mapping is unmapped");
  if (static_cast<uint64_t>(offset) >= length_) ThrowRange(env, "The value of \"offset\" is out of range");
  return Napi::Number::New(env, __atomic_load_n(base_ + offset, __ATOMIC_ACQUIRE));
}

// casByte(offset, expected, desired) -> the byte before: swapped iff it was
// `expected`. One atomic compare-and-swap (seq_cst): a byte both processes
// may write decides who goes on (local_reuse.ts, the kept link's reuse byte).
Napi::Value SharedMapping::CasByte(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t offset = IntArg(info, 0, "offset", 0, int64_t(1) << 50);
  uint8_t expected = static_cast<uint8_t>(IntArg(info, 1, "expected", 0, 255));
  uint8_t desired = static_cast<uint8_t>(IntArg(info, 2, "desired", 0, 255));
  if (base_ == nullptr) ThrowCode(env, "ERR_INVALID_STATE", "mapping is unmapped");
  if (!writable_) ThrowCode(env, "ERR_INVALID_STATE", "mapping is read-only");
  if (static_cast<uint64_t>(offset) >= length_) ThrowRange(env, "The value of \"offset\" is out of range");
  uint8_t seen = expected;
  __atomic_compare_exchange_n(base_ + offset, &seen, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return Napi::Number::New(env, seen);
}

void SharedMapping::Track(AddonData* owner) {
  try {
    owner->mappings.insert(this);
    owner_ = owner;
  } catch (...) {
    // Out of memory: untracked, it is still unmapped by unmap() or the finalizer.
  }
}

void SharedMapping::Release() {
  // No JS reads the pages once they may go. At environment teardown no JS
  // runs any more (and no handle may be made): the view is left as it is.
  if (base_ != nullptr && (owner_ == nullptr || !owner_->tearing_down)) {
    if (!word_view_.IsEmpty()) word_view_.Reset();
    // A view that could not be detached may still be read: the pages stay
    // mapped (a leak, never a read of unmapped memory).
    if (!DetachSharedView(word_buffer_)) base_ = nullptr;
  }
  if (base_ != nullptr) munmap(base_, length_);
  base_ = nullptr;
  length_ = 0;
  if (owner_ != nullptr) owner_->mappings.erase(this);
  owner_ = nullptr;
}

Napi::Value SharedMapping::FirstPageWord(Napi::Env env, size_t offset) {
  size_t page = length_ < 4096 ? length_ : 4096;
  if (base_ == nullptr || offset % 4 != 0 || offset + sizeof(uint32_t) > page) return env.Undefined();
  if (word_buffer_.IsEmpty()) {
    // No finalizer: the buffer owns nothing; Release() detaches it. Just the
    // word: nothing else of the pages reaches JS through it.
    word_buffer_.Reset(Napi::ArrayBuffer::New(env, base_ + offset, sizeof(uint32_t)), 1);
    word_view_.Reset(Napi::Uint32Array::New(env, 1, word_buffer_.Value(), 0), 1);
    word_offset_ = offset;
  }
  if (offset != word_offset_) return env.Undefined();
  // One ring endpoint after another asks for it (a kept link's connections): the same view.
  return word_view_.Value();
}

Napi::Object SharedMapping::Adopt(Napi::Env env, uint8_t* base, size_t length, bool writable) {
  // Until the object holds the pages nothing else will unmap them: once a
  // worker is being terminated, New() or Unwrap() fails, and a grant mapping
  // left behind keeps its grants and never fires its unmap notify.
  try {
    AddonData* owner = GetAddonData(env);
    Napi::Object obj = owner->mapping_ctor.New({env.Undefined()});
    SharedMapping* m = ObjectWrap<SharedMapping>::Unwrap(obj);
    m->base_ = base;
    m->length_ = length;
    m->writable_ = writable;
    m->Track(owner);
    return obj;
  } catch (...) {
    munmap(base, length);
    throw;
  }
}

SharedMapping* SharedMapping::Unwrap(Napi::Value v) {
  if (!v.IsObject()) return nullptr;
  Napi::Object o = v.As<Napi::Object>();
  if (!o.CheckTypeTag(&kSharedMappingTag)) return nullptr;
  return ObjectWrap<SharedMapping>::Unwrap(o);
}

Napi::Value SharedMapping::Length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(length_));
}

Napi::Value SharedMapping::Unmap(const Napi::CallbackInfo& info) {
  if (pins_ > 0) ThrowCode(info.Env(), "ERR_INVALID_STATE", "mapping is still used by a ring endpoint");
  Release();
  return info.Env().Undefined();
}

}  // namespace xenring
