#include "returned_buffers.h"

#include <sys/mman.h>

#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "external_buffer.h"
#include "pool_mapping.h"
#include "region_view.h"

namespace xenring {

namespace {

constexpr size_t kPage = 4096;

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older headers lack it
#endif

// Maps a fresh slab's pages in one call. The reader fills a slab whole, and
// one populate call costs ~10-15 % less CPU than a page fault per 4 KiB as
// the copies reach the pages (docs/benchmark.md, "Bulk 64 KiB: what each
// MiB costs").
// Best effort: a kernel without MADV_POPULATE_WRITE fails the call and the
// pages fault in on first touch, as before.
void Prefault(void* p, size_t n) { (void)madvise(p, n & ~(kPage - 1), MADV_POPULATE_WRITE); }

// Slabs are mapped and unmapped whole, not malloc'd: glibc raises its mmap
// threshold to the size of the first large block freed, so later slabs came
// from its heap, and a slab freed there stayed resident while anything
// above it lived (RSS +80 MiB after a 200-connection burst, with nothing
// held). munmap gives the pages back when the slab goes. Page-aligned too:
// ring copies into it stay clear of the rep-movsb page-offset trap
// (fast_copy.h) for the first chunk of a slab.
void* MapSlab(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  Prefault(p, size);
  return p;
}

void UnmapSlab(void* p, size_t size) {
  if (p != nullptr) munmap(p, size);
}

// ---------------------------------------------------------------- slabs

// Free slabs of one size. Shared by the JS object and every slab it handed
// out (through their finalizers), so a slab collected after the object is
// gone is still freed.
struct SlabCache {
  SlabCache(size_t size, size_t keep) : size(size), keep(keep), limit(keep) {}
  ~SlabCache() {
    for (void* p : free) UnmapSlab(p, size);
  }
  const size_t size;
  const size_t keep;
  // keep, or what trim() left until the next take(): slabs collected while
  // idle (GC runs late in a quiet process) are freed, not cached for good.
  size_t limit;
  std::mutex mu;
  std::vector<void*> free;
  double reused = 0;
  double fresh = 0;
};

struct SlabHint {
  std::shared_ptr<SlabCache> cache;
};

void ReturnSlab(napi_env, void* data, void* arg) {
  auto* hint = static_cast<SlabHint*>(arg);
  {
    std::lock_guard<std::mutex> lock(hint->cache->mu);
    if (hint->cache->free.size() < hint->cache->limit) {
      hint->cache->free.push_back(data);
      data = nullptr;
    }
  }
  UnmapSlab(data, hint->cache->size);
  delete hint;
}

// V8 runs a minor GC once the young generation's buffers hold 2x the
// semi-space (32 MiB in Node 20), but checks only when it allocates a
// buffer's memory itself, never for ours. A 1-byte buffer of its own gives it
// that check, so collected slabs and views come back every ~32 MiB instead
// of at the next full GC (measured: ~74 MiB apart, and 80 % of slabs fresh).
void NudgeScavenge(napi_env env) {
  void* data;
  napi_value ignored;
  napi_create_arraybuffer(env, 1, &data, &ignored);
}

class SlabRecycler : public Napi::ObjectWrap<SlabRecycler> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SlabRecycler",
                       {InstanceMethod("take", &SlabRecycler::Take),
                        InstanceMethod("trim", &SlabRecycler::Trim),
                        InstanceAccessor("cached", &SlabRecycler::Cached, nullptr),
                        InstanceAccessor("reused", &SlabRecycler::Reused, nullptr),
                        InstanceAccessor("fresh", &SlabRecycler::Fresh, nullptr)});
  }

  // new SlabRecycler(slabSize, keep): slabs of slabSize bytes (page-aligned);
  // up to `keep` collected ones are kept for reuse, the rest freed.
  explicit SlabRecycler(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SlabRecycler>(info) {
    GuardConstructor(info.Env(), [&] {
      int64_t size = IntArg(info, 0, "slabSize", 1, int64_t(1) << 30);
      int64_t keep = IntArg(info, 1, "keep", 0, 1 << 16);
      cache_ = std::make_shared<SlabCache>(static_cast<size_t>(size), static_cast<size_t>(keep));
    });
  }

 private:
  // take() -> a Buffer of slabSize bytes: a collected slab again (its pages
  // already faulted in and likely in cache), or a new one. Its contents are
  // whatever was there: the caller overwrites what it hands on.
  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(cache_->mu);
      cache_->limit = cache_->keep;
      if (!cache_->free.empty()) {
        p = cache_->free.back();
        cache_->free.pop_back();
        cache_->reused++;
      }
    }
    if (p == nullptr) {
      p = MapSlab(cache_->size);
      if (p == nullptr) ThrowCode(env, "ERR_MEMORY_ALLOCATION_FAILED", "out of memory");
      std::lock_guard<std::mutex> lock(cache_->mu);
      cache_->fresh++;
    }
    auto* hint = new SlabHint{cache_};
    Napi::Value slab;
    bool taken = false;
    try {
      slab = NewExternalBuffer(env, p, cache_->size, ReturnSlab, hint, &taken);
    } catch (...) {
      if (!taken) {  // else ReturnSlab has it (external_buffer.h)
        delete hint;
        UnmapSlab(p, cache_->size);
      }
      throw;
    }
    NudgeScavenge(env);
    return slab;
  }

  // trim(keep): frees cached slabs beyond `keep` (memory back to the system
  // once receiving has gone quiet); until the next take(), slabs collected
  // beyond `keep` are freed too.
  Napi::Value Trim(const Napi::CallbackInfo& info) {
    size_t keep = static_cast<size_t>(IntArg(info, 0, "keep", 0, 1 << 16));
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lock(cache_->mu);
      cache_->limit = std::min(keep, cache_->keep);
      while (cache_->free.size() > keep) {
        drop.push_back(cache_->free.front());
        cache_->free.erase(cache_->free.begin());
      }
    }
    for (void* p : drop) UnmapSlab(p, cache_->size);
    return Napi::Number::New(info.Env(), static_cast<double>(drop.size()));
  }

  Napi::Value Cached(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(cache_->mu);
    return Napi::Number::New(info.Env(), static_cast<double>(cache_->free.size()));
  }
  Napi::Value Reused(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(cache_->mu);
    return Napi::Number::New(info.Env(), cache_->reused);
  }
  Napi::Value Fresh(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(cache_->mu);
    return Napi::Number::New(info.Env(), cache_->fresh);
  }

  std::shared_ptr<SlabCache> cache_;
};

// ---------------------------------------------------------------- views

// Ids of collected views, until drain() takes them, and whom to tell when
// the first one arrives (the receiver may be idle: nothing else would look).
struct ReturnList {
  std::mutex mu;
  std::vector<uint32_t> ids;
  napi_env env = nullptr;
  napi_ref notify = nullptr;  // strong until close(): the owner must close
};

struct ReturningViewHint {
  PoolRegion* region;
  std::shared_ptr<ReturnList> list;
  uint32_t id;
  int64_t uncounted;  // bytes taken off V8's external count when made
};

void ViewCollected(napi_env env, void* data, void* arg) {
  auto* hint = static_cast<ReturningViewHint*>(arg);
  bool first;
  {
    std::lock_guard<std::mutex> lock(hint->list->mu);
    first = hint->list->ids.empty();
    hint->list->ids.push_back(hint->id);
  }
  // Node 20 runs buffer finalizers from the event loop (not inside the GC),
  // where calling JS is allowed; not while the environment is torn down.
  napi_ref notify = hint->list->notify;
  if (first && notify != nullptr && !GetAddonData(Napi::Env(env))->tearing_down) {
    Napi::HandleScope scope(env);
    napi_value fn, global, ignored;
    if (napi_get_reference_value(env, notify, &fn) == napi_ok && fn != nullptr && napi_get_global(env, &global) == napi_ok &&
        napi_call_function(env, global, fn, 0, nullptr, &ignored) != napi_ok) {
      // The callback catches its own errors; anything left is not ours to throw from a finalizer.
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
    }
  }
  if (hint->uncounted != 0) {
    int64_t ignored;
    napi_adjust_external_memory(env, hint->uncounted, &ignored);
  }
  hint->region->ViewGone(data);
  hint->region->Unref();
  delete hint;
}

class ViewReturns : public Napi::ObjectWrap<ViewReturns> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "ViewReturns",
                       {InstanceMethod("view", &ViewReturns::View), InstanceMethod("drain", &ViewReturns::Drain),
                        InstanceMethod("close", &ViewReturns::Close)});
  }

  // new ViewReturns(onCollected?): onCollected() runs (from the event loop)
  // when a collected view's id is queued and none was waiting; close() drops it.
  explicit ViewReturns(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ViewReturns>(info) {
    GuardConstructor(info.Env(), [&] {
      list_ = std::make_shared<ReturnList>();
      if (info.Length() > 0 && info[0].IsFunction()) {
        list_->env = info.Env();
        if (napi_create_reference(info.Env(), info[0], 1, &list_->notify) != napi_ok) list_->notify = nullptr;
      }
    });
  }

  ~ViewReturns() override { DropNotify(); }

 private:
  // view(mapping, offset, length, id, counted) -> a Buffer over the mapping's
  // [offset, offset + length) whose collection queues `id` for drain().
  // counted: V8 counts its bytes as new external memory (which paces GCs by
  // them); otherwise they are taken off its count, as PoolMapping.view does.
  Napi::Value View(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    // Before the region is taken: once a worker is being terminated any N-API
    // call that may run JS (this coercion is one) can fail, and a throw after
    // Acquire() kept the region mapped for good.
    bool counted = info.Length() > 4 && info[4].ToBoolean();
    PoolRegion* region = PoolMapping::Acquire(info.Length() > 0 ? info[0] : env.Undefined());
    if (region == nullptr) ThrowCode(env, "ERR_INVALID_STATE", "pool mapping is closed");
    int64_t offset, length;
    uint32_t id;
    try {
      int64_t size = static_cast<int64_t>(region->length());
      offset = IntArg(info, 1, "offset", 0, size - 1);
      length = IntArg(info, 2, "length", 1, size - offset);
      id = static_cast<uint32_t>(IntArg(info, 3, "id", 0, UINT32_MAX));
    } catch (...) {
      region->Unref();
      throw;
    }
    Napi::Value view = NewRegionView(env, region, offset, length, !counted, ViewCollected,
                                     new ReturningViewHint{region, list_, id, counted ? 0 : length});
    if (counted) NudgeScavenge(env);
    return view;
  }

  // drain(out: Uint32Array) -> how many ids of collected views were moved into out.
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
      ThrowType(env, "The \"out\" argument must be a Uint32Array");
    Napi::Uint32Array out = info[0].As<Napi::Uint32Array>();
    size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(list_->mu);
      n = std::min(out.ElementLength(), list_->ids.size());
      // From the back: order does not matter, and the rest stays put.
      for (size_t i = 0; i < n; i++) {
        out[i] = list_->ids.back();
        list_->ids.pop_back();
      }
    }
    return Napi::Number::New(env, static_cast<double>(n));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    DropNotify();
    return info.Env().Undefined();
  }

  void DropNotify() {
    if (list_ == nullptr || list_->notify == nullptr) return;
    napi_delete_reference(list_->env, list_->notify);
    list_->notify = nullptr;
  }

  std::shared_ptr<ReturnList> list_;
};

}  // namespace

void InitReturnedBuffers(Napi::Env env, Napi::Object exports) {
  exports.Set("SlabRecycler", SlabRecycler::Init(env));
  exports.Set("ViewReturns", ViewReturns::Init(env));
}

}  // namespace xenring
