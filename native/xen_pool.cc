// Pool regions on Xen, as PoolMappings. Both functions drop the driver's slot
// right after mmap (ShareGrants / MapGrants), so the region needs nothing but
// munmap to be released: PoolRegion's own munmap, when its last holder (the
// JS object, a view, a queue) goes, gives the grants back (gntalloc) or
// unmaps the peer's grants (gntdev). Views may outlive the socket and the
// connection; they never see unmapped memory.
//
// gntCopy is the other way to get a private copy of a received payload
// (IOCTL_GNTDEV_GRANT_COPY: the hypervisor copies from the granted pages,
// nothing mapped). It exists to compare with memcpy from the mapping
// (bench/xen-pool-copy.js); policy decides which one the receiver uses.
#include "xen_pool.h"

#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "addon_data.h"
#include "errors.h"
#include "pool_mapping.h"
#include "xen_devices.h"

namespace xenring {

namespace {

// Pages of the largest region: a 1 GiB pool (lib/pool/layout.ts MAX_POOL)
// plus its queue page.
// Xen's grant_table.h ABI (not in the uapi headers): the copy source is a grant ref.
constexpr uint16_t kGntcopySourceGref = 1 << 0;

constexpr int64_t kMaxRegionPages = (int64_t(1) << 30) / int64_t(kXenPage) + 1;

// gntSharePool(domid, count) -> { mapping: PoolMapping, refs: number[] }
// `count` fresh zeroed pages, granted writable to `domid` (the receiver
// writes the completion queue). ENOSPC (gntalloc's grant limit) is thrown
// like any error; the caller then goes on without a pool.
Napi::Value GntSharePool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint16_t domid = static_cast<uint16_t>(IntArg(info, 0, "domid", 0, kMaxDomid));
  uint32_t count = static_cast<uint32_t>(IntArg(info, 1, "count", 1, kMaxRegionPages));
  std::vector<uint32_t> ids;
  uint8_t* p = ShareGrants(env, domid, count, true, -1, -1, &ids);
  Napi::Object mapping = PoolMapping::Adopt(env, p, size_t(count) * kXenPage);  // munmaps if it throws
  Napi::Array refs = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) refs.Set(i, Napi::Number::New(env, ids[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("mapping", mapping);
  out.Set("refs", refs);
  return out;
}

// gntMapPool(domid, refs) -> PoolMapping: the peer's region, mapped
// read/write (we write its completion queue). EAGAIN is thrown for the
// caller to retry on a timer.
Napi::Value GntMapPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t domid = static_cast<uint32_t>(IntArg(info, 0, "domid", 0, kMaxDomid));
  size_t length = 0;
  uint8_t* p = MapGrants(env, domid, info.Length() > 1 ? info[1] : env.Undefined(),
                         static_cast<uint32_t>(kMaxRegionPages), true, -1, -1, &length);
  return PoolMapping::Adopt(env, p, length);
}

// gntdevOpen() -> fd of /dev/xen/gntdev for gntCopy, owned by the
// environment until closeFd().
Napi::Value GntdevOpen(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), OwnFd(info.Env(), OpenDevice(info.Env(), kGntdev, 0)));
}

// gntCopy(fd, domid, refs, target): copies the granted pages `refs` of
// `domid`, in order, into `target` (at least refs.length pages) with
// IOCTL_GNTDEV_GRANT_COPY, one ioctl per batch. A segment the hypervisor
// refuses throws EIO (its GNTST_* status is in the message).
Napi::Value GntCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint16_t domid = static_cast<uint16_t>(IntArg(info, 1, "domid", 0, kMaxDomid));
  if (info.Length() < 3 || !info[2].IsArray()) ThrowType(env, "The \"refs\" argument must be an array");
  if (info.Length() < 4 || !info[3].IsTypedArray() ||
      info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowType(env, "The \"target\" argument must be a Uint8Array");
  Napi::Array arr = info[2].As<Napi::Array>();
  Napi::Uint8Array target = info[3].As<Napi::Uint8Array>();
  uint32_t count = arr.Length();
  if (count > kMaxRegionPages || size_t(count) * kXenPage > target.ElementLength())
    ThrowRange(env, "The target is smaller than the pages to copy");
  constexpr uint32_t kBatch = 64;
  gntdev_grant_copy_segment segs[kBatch];
  for (uint32_t done = 0; done < count;) {
    uint32_t n = count - done < kBatch ? count - done : kBatch;
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value v = arr.Get(done + i);
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d <= 4294967295.0) || d != double(uint32_t(d))) ThrowRange(env, "grant refs must be uint32");
      gntdev_grant_copy_segment& s = segs[i];
      s = gntdev_grant_copy_segment{};
      s.source.foreign.ref = static_cast<uint32_t>(d);
      s.source.foreign.offset = 0;
      s.source.foreign.domid = domid;
      s.dest.virt = target.Data() + size_t(done + i) * kXenPage;
      s.len = kXenPage;
      s.flags = kGntcopySourceGref;
    }
    ioctl_gntdev_grant_copy op{};
    op.count = n;
    op.segments = segs;
    if (Ioctl(fd, IOCTL_GNTDEV_GRANT_COPY, &op) != 0) ThrowErrno(env, errno, "ioctl(GNTDEV_GRANT_COPY)");
    for (uint32_t i = 0; i < n; i++) {
      if (segs[i].status != 0)
        ThrowErrno(env, EIO, "ioctl(GNTDEV_GRANT_COPY)", ("segment status " + std::to_string(segs[i].status)).c_str());
    }
    done += n;
  }
  return env.Undefined();
}

}  // namespace

void InitXenPool(Napi::Env env, Napi::Object xen) {
  xen.Set("gntSharePool", Napi::Function::New(env, GntSharePool, "gntSharePool"));
  xen.Set("gntMapPool", Napi::Function::New(env, GntMapPool, "gntMapPool"));
  xen.Set("gntdevOpen", Napi::Function::New(env, GntdevOpen, "gntdevOpen"));
  xen.Set("gntCopy", Napi::Function::New(env, GntCopy, "gntCopy"));
}

}  // namespace xenring
