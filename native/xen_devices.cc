// Thin bindings over the Linux Xen devices. No policy lives here: the vchan
// handshake, validation of peer data and cleanup order are in
// lib/transports/xen. Every function frees what it took on each error path and
// throws a Node-style system error (ENOENT when the device is absent, EACCES
// when not permitted).
#include "xen_devices.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <xen/evtchn.h>

#include "addon_data.h"
#include "errors.h"
#include "notifier.h"
#include "shared_mapping.h"

namespace xenring {

namespace {

// 1 control page + 2 rings of at most 1 MiB each (libxenvchan's limit).
constexpr int64_t kMaxPages = 1 + 2 * 256;

const char kEvtchn[] = "/dev/xen/evtchn";
const char kXenbus[] = "/dev/xen/xenbus";

// Like ThrowErrno, plus the device path (as fs errors carry it), so that
// "open ENOENT '/dev/xen/gntdev'" says which module is missing.
[[noreturn]] void ThrowOpen(Napi::Env env, int err, const char* path) { ThrowErrno(env, err, "open", path); }

}  // namespace

int OpenDevice(Napi::Env env, const char* path, int extra_flags) {
  int fd;
  do fd = open(path, O_RDWR | O_CLOEXEC | extra_flags); while (fd < 0 && errno == EINTR);
  if (fd < 0) ThrowOpen(env, errno, path);
  return fd;
}

int Ioctl(int fd, unsigned long req, void* arg) {
  int rc;
  do rc = ioctl(fd, req, arg); while (rc < 0 && errno == EINTR);
  return rc;
}

namespace {

// Optional int argument: undefined / null / -1 mean "none".
int64_t OptionalArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t hi) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return -1;
  return IntArg(info, i, name, -1, hi);
}

}  // namespace

// Allocates `count` fresh zeroed pages granted to `domid` (writable grants if
// `writable`) and maps them read/write. The driver slot is released right
// after mmap (as libxengntshr does) so that munmap alone frees the pages; the
// fd is closed at once, the mapping keeps the file alive. notify_offset (byte
// in the mapping, -1 none) is cleared and notify_port (-1 none) signalled when
// our last reference goes away, including process death.
uint8_t* ShareGrants(Napi::Env env, uint16_t domid, uint32_t count, bool writable, int64_t notify_offset,
                     int64_t notify_port, std::vector<uint32_t>* refs) {
  FdGuard fd(OpenDevice(env, kGntalloc, 0));
  std::vector<uint8_t> buf(sizeof(ioctl_gntalloc_alloc_gref) + count * sizeof(uint32_t));
  auto* op = reinterpret_cast<ioctl_gntalloc_alloc_gref*>(buf.data());
  op->domid = domid;
  op->flags = writable ? GNTALLOC_FLAG_WRITABLE : 0;
  op->count = count;
  if (Ioctl(fd.get(), IOCTL_GNTALLOC_ALLOC_GREF, op) != 0) ThrowErrno(env, errno, "ioctl(GNTALLOC_ALLOC_GREF)");
  uint64_t index = op->index;
  auto dealloc = [&]() {
    ioctl_gntalloc_dealloc_gref d{};
    d.index = index;
    d.count = count;
    Ioctl(fd.get(), IOCTL_GNTALLOC_DEALLOC_GREF, &d);
  };

  size_t length = size_t(count) * kXenPage;
  void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), static_cast<off_t>(index));
  if (p == MAP_FAILED) {
    int err = errno;
    dealloc();
    ThrowErrno(env, err, "mmap");
  }
  if (notify_offset >= 0 || notify_port >= 0) {
    ioctl_gntalloc_unmap_notify n{};
    n.index = index + static_cast<uint64_t>(notify_offset >= 0 ? notify_offset : 0);
    n.action = (notify_offset >= 0 ? UNMAP_NOTIFY_CLEAR_BYTE : 0) | (notify_port >= 0 ? UNMAP_NOTIFY_SEND_EVENT : 0);
    n.event_channel_port = notify_port >= 0 ? static_cast<uint32_t>(notify_port) : 0;
    if (Ioctl(fd.get(), IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, &n) != 0) {
      int err = errno;
      munmap(p, length);
      dealloc();
      ThrowErrno(env, err, "ioctl(GNTALLOC_SET_UNMAP_NOTIFY)");
    }
  }
  dealloc();  // the mapping now holds the only reference
  refs->assign(op->gref_ids, op->gref_ids + count);
  return static_cast<uint8_t*>(p);
}

// Maps a peer's grant refs (a JS array of uint32, 1..max of them)
// contiguously. A read-only map (writable=false) can only notify by event,
// never clear a byte. An EAGAIN from mmap (page being paged in by the
// granting domain) is thrown for the caller to retry later. The driver slot
// is dropped at once: munmap alone unmaps the grants (and fires the notify).
uint8_t* MapGrants(Napi::Env env, uint32_t domid, Napi::Value refs_value, uint32_t max, bool writable,
                   int64_t notify_offset, int64_t notify_port, size_t* length_out) {
  if (!refs_value.IsArray()) ThrowType(env, "The \"refs\" argument must be an array");
  Napi::Array arr = refs_value.As<Napi::Array>();
  uint32_t count = arr.Length();
  if (count < 1 || count > max) ThrowRange(env, "The number of grant refs is out of range");
  if (notify_offset >= int64_t(count) * int64_t(kXenPage)) ThrowRange(env, "notifyOffset is outside the mapping");
  if (notify_offset >= 0 && !writable) ThrowType(env, "a read-only grant map cannot clear a byte on unmap");

  std::vector<uint8_t> buf(sizeof(ioctl_gntdev_map_grant_ref) + count * sizeof(ioctl_gntdev_grant_ref));
  auto* op = reinterpret_cast<ioctl_gntdev_map_grant_ref*>(buf.data());
  op->count = count;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = arr.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 4294967295.0) || d != double(uint32_t(d))) ThrowRange(env, "grant refs must be uint32");
    op->refs[i].domid = domid;
    op->refs[i].ref = static_cast<uint32_t>(d);
  }

  FdGuard fd(OpenDevice(env, kGntdev, 0));
  if (Ioctl(fd.get(), IOCTL_GNTDEV_MAP_GRANT_REF, op) != 0) ThrowErrno(env, errno, "ioctl(GNTDEV_MAP_GRANT_REF)");
  uint64_t index = op->index;
  auto release_slot = [&]() {
    ioctl_gntdev_unmap_grant_ref u{};
    u.index = index;
    u.count = count;
    Ioctl(fd.get(), IOCTL_GNTDEV_UNMAP_GRANT_REF, &u);
  };

  size_t length = size_t(count) * kXenPage;
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  // One attempt: EAGAIN (a granted page being paged in) is thrown, and the
  // caller retries on a timer (lib/transports/xen/handshake.ts gntMapRetry),
  // so the event loop never sleeps here.
  void* p = mmap(nullptr, length, prot, MAP_SHARED, fd.get(), static_cast<off_t>(index));
  if (p == MAP_FAILED) {
    int err = errno;
    release_slot();
    ThrowErrno(env, err, "mmap");
  }
  if (notify_offset >= 0 || notify_port >= 0) {
    ioctl_gntdev_unmap_notify n{};
    n.index = index + static_cast<uint64_t>(notify_offset >= 0 ? notify_offset : 0);
    n.action = (notify_offset >= 0 ? UNMAP_NOTIFY_CLEAR_BYTE : 0) | (notify_port >= 0 ? UNMAP_NOTIFY_SEND_EVENT : 0);
    n.event_channel_port = notify_port >= 0 ? static_cast<uint32_t>(notify_port) : 0;
    if (Ioctl(fd.get(), IOCTL_GNTDEV_SET_UNMAP_NOTIFY, &n) != 0) {
      int err = errno;
      munmap(p, length);
      release_slot();
      ThrowErrno(env, err, "ioctl(GNTDEV_SET_UNMAP_NOTIFY)");
    }
  }
  release_slot();
  *length_out = length;
  return static_cast<uint8_t*>(p);
}

namespace {

// gntShare(domid, count, writable, notifyOffset, notifyPort)
//   -> { mapping: SharedMapping, refs: number[] }   (see ShareGrants)
Napi::Value GntShare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint16_t domid = static_cast<uint16_t>(IntArg(info, 0, "domid", 0, kMaxDomid));
  uint32_t count = static_cast<uint32_t>(IntArg(info, 1, "count", 1, kMaxPages));
  bool writable = info.Length() > 2 && info[2].ToBoolean();
  int64_t notify_offset = OptionalArg(info, 3, "notifyOffset", int64_t(count) * kXenPage - 1);
  int64_t notify_port = OptionalArg(info, 4, "notifyPort", 0xffffffffll);
  std::vector<uint32_t> ids;
  uint8_t* p = ShareGrants(env, domid, count, writable, notify_offset, notify_port, &ids);
  // Adopted before any other N-API call: those fail once a worker is being
  // terminated, and the pages (with their grants and unmap notify) would
  // stay mapped for good.
  Napi::Object mapping = SharedMapping::Adopt(env, p, size_t(count) * kXenPage, true);  // munmaps if it throws
  Napi::Array refs = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) refs.Set(i, Napi::Number::New(env, ids[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("mapping", mapping);
  out.Set("refs", refs);
  return out;
}

// gntMap(domid, refs, writable, notifyOffset, notifyPort) -> SharedMapping
Napi::Value GntMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t domid = static_cast<uint32_t>(IntArg(info, 0, "domid", 0, kMaxDomid));
  bool writable = info.Length() > 2 && info[2].ToBoolean();
  int64_t notify_offset = OptionalArg(info, 3, "notifyOffset", int64_t(kMaxPages) * kXenPage - 1);
  int64_t notify_port = OptionalArg(info, 4, "notifyPort", 0xffffffffll);
  size_t length = 0;
  uint8_t* p = MapGrants(env, domid, info.Length() > 1 ? info[1] : env.Undefined(), kMaxPages, writable,
                         notify_offset, notify_port, &length);
  return SharedMapping::Adopt(env, p, length, writable);  // munmaps if it throws
}

// evtchnOpen() -> fd (O_CLOEXEC so spawned children inherit no ports,
// O_NONBLOCK so the fd can be read from a uv_poll callback).
// Owned by the environment until closeFd(): a terminated worker's ports are
// unbound by closing the device at teardown.
Napi::Value EvtchnOpen(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), OwnFd(info.Env(), OpenDevice(info.Env(), kEvtchn, O_NONBLOCK)));
}

// The bind ioctls return the local port as the ioctl's result.
Napi::Value EvtchnBindUnbound(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  ioctl_evtchn_bind_unbound_port op{};
  op.remote_domain = static_cast<unsigned>(IntArg(info, 1, "remoteDomid", 0, kMaxDomid));
  int port = Ioctl(fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, &op);
  if (port < 0) ThrowErrno(env, errno, "ioctl(EVTCHN_BIND_UNBOUND_PORT)");
  return Napi::Number::New(env, port);
}

Napi::Value EvtchnBindInterdomain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  ioctl_evtchn_bind_interdomain op{};
  op.remote_domain = static_cast<unsigned>(IntArg(info, 1, "remoteDomid", 0, kMaxDomid));
  op.remote_port = static_cast<unsigned>(IntArg(info, 2, "remotePort", 1, 0xffffffffll));
  int port = Ioctl(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &op);
  if (port < 0) ThrowErrno(env, errno, "ioctl(EVTCHN_BIND_INTERDOMAIN)");
  return Napi::Number::New(env, port);
}

Napi::Value EvtchnUnbind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  ioctl_evtchn_unbind op{};
  op.port = static_cast<unsigned>(IntArg(info, 1, "port", 0, 0xffffffffll));
  if (Ioctl(fd, IOCTL_EVTCHN_UNBIND, &op) != 0) ThrowErrno(env, errno, "ioctl(EVTCHN_UNBIND)");
  return env.Undefined();
}

Napi::Value EvtchnNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  ioctl_evtchn_notify op{};
  op.port = static_cast<unsigned>(IntArg(info, 1, "port", 0, 0xffffffffll));
  if (Ioctl(fd, IOCTL_EVTCHN_NOTIFY, &op) != 0) ThrowErrno(env, errno, "ioctl(EVTCHN_NOTIFY)");
  return env.Undefined();
}

// Writing a port back to the device unmasks it.
Napi::Value EvtchnUnmask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint32_t port = static_cast<uint32_t>(IntArg(info, 1, "port", 0, 0xffffffffll));
  ssize_t n;
  do n = write(fd, &port, sizeof port); while (n < 0 && errno == EINTR);
  if (n != sizeof port) ThrowErrno(env, n < 0 ? errno : EIO, "write");
  return env.Undefined();
}

// evtchnPending(fd) -> number[]: ports that fired (now masked until unmasked).
Napi::Value EvtchnPending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint32_t ports[64];
  ssize_t n;
  do n = read(fd, ports, sizeof ports); while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN) ThrowErrno(env, errno, "read");
  size_t k = n > 0 ? static_cast<size_t>(n) / sizeof(uint32_t) : 0;
  Napi::Array out = Napi::Array::New(env, k);
  for (size_t i = 0; i < k; i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, ports[i]));
  return out;
}

// Wake-ups over one bound event channel port of the evtchn device.
class EvtchnNotifier : public Notifier {
 public:
  EvtchnNotifier(int fd, uint32_t port) : fd_(fd), port_(port) {}
  int Kick() override {
    ioctl_evtchn_notify op{};
    op.port = port_;
    return Ioctl(fd_, IOCTL_EVTCHN_NOTIFY, &op) != 0 ? errno : 0;
  }
  // Reads the ports that fired and writes them back, which unmasks them.
  int64_t Ack() override {
    uint32_t ports[32];
    ssize_t n;
    do n = ::read(fd_, ports, sizeof ports); while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    size_t k = static_cast<size_t>(n) / sizeof(uint32_t);
    if (k == 0) return 0;
    ssize_t w;
    do w = ::write(fd_, ports, k * sizeof(uint32_t)); while (w < 0 && errno == EINTR);
    if (w < 0) return -errno;
    return static_cast<int64_t>(k);
  }
  int WaitFd() const override { return fd_; }

 private:
  int fd_;
  uint32_t port_;
};

// evtchnNotifier(fd, port) -> Notifier over a port bound on `fd` (the fd and
// the binding stay the caller's).
Napi::Value EvtchnNotifierNew(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0);
  uint32_t port = static_cast<uint32_t>(IntArg(info, 1, "port", 0, 0xffffffffll));
  return NotifierHandle::Wrap(info.Env(), std::make_unique<EvtchnNotifier>(fd, port));
}

// xenbusOpen() -> fd of /dev/xen/xenbus, non-blocking: the xs_wire client in
// TypeScript polls it with an FdWatcher and never blocks the loop.
Napi::Value XenbusOpen(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), OwnFd(info.Env(), OpenDevice(info.Env(), kXenbus, O_NONBLOCK)));
}

// fdWrite(fd, buffer) -> bytes written (0 on EAGAIN). The xenbus device takes
// a whole request per write.
Napi::Value FdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (info.Length() < 2 || !info[1].IsTypedArray()) ThrowType(env, "The \"buffer\" argument must be a Uint8Array");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  ssize_t n;
  do n = write(fd, p, ta.ByteLength()); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return Napi::Number::New(env, 0);
    ThrowErrno(env, errno, "write");
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// fdRead(fd, max) -> Buffer (empty at EOF) or null when nothing is ready.
Napi::Value FdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  size_t max = static_cast<size_t>(IntArg(info, 1, "max", 1, 1 << 20));
  std::vector<uint8_t> buf(max);
  ssize_t n;
  do n = read(fd, buf.data(), max); while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return env.Null();
    ThrowErrno(env, errno, "read");
  }
  return Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n));
}

// fdWaitReadable(fd, timeoutMs) -> whether `fd` became readable within the
// bound. Used once per process, for the one xenstore read that must be
// synchronous (a guest's own domid at listen()); everything else is polled by
// libuv. The wait is bounded by the caller's timeout, EINTR included.
Napi::Value FdWaitReadable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  int64_t timeout = IntArg(info, 1, "timeoutMs", 0, 10000);
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count();
    struct pollfd p = {fd, POLLIN, 0};
    int n = poll(&p, 1, left > 0 ? static_cast<int>(left) : 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno(env, errno, "poll");
    return Napi::Boolean::New(env, n > 0);
  }
}

// peek(mapping, offset, length) -> Buffer: a private copy of bytes of a
// mapping (at most one page), so TypeScript can parse the peer-written control
// page header and grant list without ever holding shared memory.
Napi::Value Peek(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SharedMapping* m = info.Length() > 0 ? SharedMapping::Unwrap(info[0]) : nullptr;
  if (m == nullptr || m->base() == nullptr) ThrowType(env, "The \"mapping\" argument must be a live SharedMapping");
  int64_t offset = IntArg(info, 1, "offset", 0, static_cast<int64_t>(m->length()));
  int64_t length = IntArg(info, 2, "length", 0, static_cast<int64_t>(kXenPage));
  if (offset + length > static_cast<int64_t>(m->length())) ThrowRange(env, "peek range is outside the mapping");
  std::vector<uint8_t> copy(static_cast<size_t>(length));
  const volatile uint8_t* src = m->base() + offset;
  for (int64_t i = 0; i < length; i++) copy[i] = src[i];  // volatile: each byte read once
  return Napi::Buffer<uint8_t>::Copy(env, copy.data(), copy.size());
}

// poke(mapping, offset, data): copies `data` into a writable mapping (the
// server writes the grant list of a control page it owns before publishing).
Napi::Value Poke(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SharedMapping* m = info.Length() > 0 ? SharedMapping::Unwrap(info[0]) : nullptr;
  if (m == nullptr || m->base() == nullptr || !m->writable())
    ThrowType(env, "The \"mapping\" argument must be a live, writable SharedMapping");
  int64_t offset = IntArg(info, 1, "offset", 0, static_cast<int64_t>(m->length()));
  if (info.Length() < 3 || !info[2].IsTypedArray()) ThrowType(env, "The \"data\" argument must be a Uint8Array");
  Napi::TypedArray ta = info[2].As<Napi::TypedArray>();
  if (offset + static_cast<int64_t>(ta.ByteLength()) > static_cast<int64_t>(m->length()))
    ThrowRange(env, "poke range is outside the mapping");
  memcpy(m->base() + offset, static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), ta.ByteLength());
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return env.Undefined();
}

// devicesAccessible() -> which device nodes exist and are read/write for us.
Napi::Value DevicesAccessible(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const char* names[] = {"gntalloc", "gntdev", "evtchn", "xenbus"};
  const char* paths[] = {kGntalloc, kGntdev, kEvtchn, kXenbus};
  for (int i = 0; i < 4; i++) o.Set(names[i], access(paths[i], R_OK | W_OK) == 0);
  return o;
}

}  // namespace

void InitXenDevices(Napi::Env env, Napi::Object exports) {
  Napi::Object xen = Napi::Object::New(env);
  auto fn = [&](const char* name, Napi::Value (*f)(const Napi::CallbackInfo&)) {
    xen.Set(name, Napi::Function::New(env, f, name));
  };
  fn("gntShare", GntShare);
  fn("gntMap", GntMap);
  fn("evtchnOpen", EvtchnOpen);
  fn("evtchnBindUnbound", EvtchnBindUnbound);
  fn("evtchnBindInterdomain", EvtchnBindInterdomain);
  fn("evtchnUnbind", EvtchnUnbind);
  fn("evtchnNotify", EvtchnNotify);
  fn("evtchnUnmask", EvtchnUnmask);
  fn("evtchnPending", EvtchnPending);
  fn("evtchnNotifier", EvtchnNotifierNew);
  fn("xenbusOpen", XenbusOpen);
  fn("fdWrite", FdWrite);
  fn("fdRead", FdRead);
  fn("fdWaitReadable", FdWaitReadable);
  fn("devicesAccessible", DevicesAccessible);
  fn("peek", Peek);
  fn("poke", Poke);
  xen.Set("pageSize", static_cast<double>(kXenPage));
  InitXenPool(env, xen);
  exports.Set("xen", xen);
}

}  // namespace xenring
