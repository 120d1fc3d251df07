// Bindings over the Linux Xen devices (/dev/xen/gntalloc, gntdev, evtchn,
// xenbus), exported as `xen` on the addon object. They compile from the uapi
// headers alone and load on a host without Xen (opening a device then fails
// with ENOENT).
#pragma once
#include <napi.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <vector>

typedef uint16_t domid_t;      // the uapi headers use Xen's typedefs without
typedef uint32_t grant_ref_t;  // defining them
#include <xen/gntalloc.h>
#include <xen/gntdev.h>

namespace xenring {

constexpr size_t kXenPage = 4096;
constexpr int64_t kMaxDomid = 0x7fef;  // DOMID_FIRST_RESERVED - 1
constexpr char kGntalloc[] = "/dev/xen/gntalloc";
constexpr char kGntdev[] = "/dev/xen/gntdev";

// Closes an fd on scope exit unless released (keeps every error path leak-free).
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// open(path, O_RDWR | O_CLOEXEC | extra_flags), retried on EINTR; throws a
// system error naming the device.
int OpenDevice(Napi::Env env, const char* path, int extra_flags);
// ioctl retried on EINTR.
int Ioctl(int fd, unsigned long req, void* arg);

// Grants `count` fresh pages to `domid` with gntalloc and maps them read/write
// (see xen_devices.cc). munmap alone frees them. The refs go to *refs.
uint8_t* ShareGrants(Napi::Env env, uint16_t domid, uint32_t count, bool writable, int64_t notify_offset,
                     int64_t notify_port, std::vector<uint32_t>* refs);
// Maps a JS array of 1..max grant refs of `domid` with gntdev, contiguously.
// munmap alone unmaps them. *length_out = bytes mapped.
uint8_t* MapGrants(Napi::Env env, uint32_t domid, Napi::Value refs, uint32_t max, bool writable,
                   int64_t notify_offset, int64_t notify_port, size_t* length_out);

void InitXenDevices(Napi::Env env, Napi::Object exports);
// The pool's grant primitives (native/xen_pool.cc), on the same `xen` object.
void InitXenPool(Napi::Env env, Napi::Object xen);
}  // namespace xenring
