// Fuzz target `ring_setup`: the RingEndpoint constructor's validation of a
// ring placement (role, control page offset, each ring's mapping, offset and
// order, the extension magic a client finds on the server's page).
//
// The orders and offsets come from the TypeScript transports, which read the
// orders off a peer's control page (validateOrders), so this is the last line
// of defence. Checked here, exactly: the constructor accepts a placement if
// and only if it is safe (control page inside its writable mapping, each
// ring inside its mapping, no overlap with the other ring, the header or the
// extension area, the written ring writable, a client with `ext` finds the
// magic); a refusal is a TypeError/RangeError with Node's codes or EPROTO and
// changes no byte; an accepted ring survives a full write and read.
#include <cmath>
#include <memory>

#include "../../native/vchan_layout.h"
#include "fuzz_support.h"

using namespace xenring::vchan;

namespace {

struct Map {
  std::unique_ptr<uint8_t[]> mem;
  size_t size = 0;
  bool writable = false;
  Napi::Object object;
};

struct RingArg {
  int map = -1;  // -1: no mapping given
  double offset = 0, order = 0;
  bool offset_is_number = true, as_object = true;
};

bool IntIn(double d, double lo, double hi) { return std::isfinite(d) && std::floor(d) == d && d >= lo && d <= hi; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  fuzz::World& w = fuzz::World::Get();
  Map maps[3];
  for (Map& m : maps) {
    static const size_t kSizes[] = {kPageSize, 2 * kPageSize, 3 * kPageSize, kPageSize + 2048, 1024, 5 * kPageSize};
    uint8_t k = in.u8();
    m.size = k < 192 ? kSizes[k % 6] : 1 + in.u16() % (5 * kPageSize);
    m.writable = in.u8() % 4 != 0;
    m.mem.reset(new uint8_t[m.size]);
    for (size_t i = 0; i < m.size; i++) m.mem[i] = static_cast<uint8_t>(i * 7);
    m.object = w.Mapping(m.mem.get(), m.size, m.writable);
  }
  uint8_t flags = in.u8();
  const char* roles[] = {"server", "client", "Server", ""};
  const char* role = roles[(flags & 3) == 3 && (in.u8() & 1) ? 3 : (flags & 1)];
  if ((flags & 3) == 2) role = roles[2];
  bool init = flags & 4, ext = flags & 8;
  int control = (flags >> 4) & 3;  // 3: not a mapping
  bool coff_given = flags & 64;
  double coff = (flags & 128) ? in.weird_double(0) : 8.0 * in.upto(3 * kPageSize / 8);
  RingArg rings[2];
  for (RingArg& r : rings) {
    uint8_t f = in.u8();
    r.map = f & 3;
    if (r.map == 3) r.map = -1;
    r.as_object = (f & 0x1c) != 0;
    r.offset_is_number = (f & 0xe0) != 0;
    r.offset = (f & 0x20) ? in.weird_double(kPageSize) : 1024.0 * in.upto(4 * kPageSize / 1024);
    uint8_t o = in.u8();
    r.order = o < 224 ? 10 + o % 5 : in.weird_double(12);
  }
  // The server's page, as a client finds it.
  bool magic_ok = (in.u8() & 3) != 0;

  Napi::Object opts = Napi::Object::New(w.env);
  if (*role) opts.Set("role", role);
  opts.Set("init", init);
  opts.Set("ext", ext);
  if (control < 3) opts.Set("control", maps[control].object);
  else opts.Set("control", 4096.0);
  if (coff_given) opts.Set("controlOffset", coff);
  const char* names[2] = {"left", "right"};
  for (int i = 0; i < 2; i++) {
    RingArg& r = rings[i];
    if (!r.as_object) {
      opts.Set(names[i], "ring");
      continue;
    }
    Napi::Object o = Napi::Object::New(w.env);
    if (r.map >= 0) o.Set("mapping", maps[r.map].object);
    if (r.offset_is_number) o.Set("offset", r.offset);
    else o.Set("offset", "0");
    o.Set("order", r.order);
    opts.Set(names[i], o);
  }
  // Where the magic would be, when the control offset is sane.
  double c = coff_given ? coff : 0;
  if (control < 3 && IntIn(c, 0, 1e15) && c + kPageSize <= maps[control].size) {
    uint32_t magic = magic_ok ? kExtMagicValue : 0x12345678;
    memcpy(maps[control].mem.get() + static_cast<size_t>(c) + kExtMagic, &magic, 4);
  }

  // The model: is this placement safe?
  const char* why = nullptr;
  bool server = strcmp(role, "server") == 0;
  uint8_t* ctrl = nullptr;
  uint8_t* base[2] = {nullptr, nullptr};
  uint64_t len[2] = {0, 0};
  if (!server && strcmp(role, "client") != 0) why = "role";
  else if (control == 3 || !maps[control].writable) why = "control mapping";
  else if (!IntIn(c, 0, 1e300) || std::fmod(c, 8) != 0 || c + kPageSize > maps[control].size) why = "control offset";
  else ctrl = maps[control].mem.get() + static_cast<size_t>(c);
  for (int i = 0; i < 2 && !why; i++) {
    RingArg& r = rings[i];
    if (!r.as_object || r.map < 0 || !r.offset_is_number) why = "ring argument";
    else if (!IntIn(r.order, kMinOrder, kMaxOrder)) why = "order";
    else {
      len[i] = uint64_t(1) << static_cast<int>(r.order);
      if (!IntIn(r.offset, 0, 1e300) || r.offset + static_cast<double>(len[i]) > maps[r.map].size) why = "ring offset";
      else base[i] = maps[r.map].mem.get() + static_cast<size_t>(r.offset);
    }
  }
  auto overlaps = [](const uint8_t* a, size_t an, const uint8_t* b, size_t bn) { return a < b + bn && b < a + an; };
  if (!why && !maps[rings[server ? 1 : 0].map].writable) why = "tx ring read-only";
  if (!why && (overlaps(base[0], len[0], base[1], len[1]) || overlaps(base[0], len[0], ctrl, kHeaderSize) ||
               overlaps(base[1], len[1], ctrl, kHeaderSize) ||
               (ext && (overlaps(base[0], len[0], ctrl + kExtMagic, kExtEnd - kExtMagic) ||
                        overlaps(base[1], len[1], ctrl + kExtMagic, kExtEnd - kExtMagic)))))
    why = "overlap";
  if (!why && init && !server) why = "client init";
  if (!why && !init && ext && !magic_ok) why = "magic";

  std::vector<uint8_t> before[3];
  for (int i = 0; i < 3; i++) before[i].assign(maps[i].mem.get(), maps[i].mem.get() + maps[i].size);
  Napi::Object ep;
  try {
    ep = w.ring_class.New({opts});
  } catch (const Napi::Error& e) {
    if (!why) fuzz::Fail("constructor refused a safe placement: %s %s", e.Code().c_str(), e.what());
    std::string code = e.Code(), name = e.Name();
    bool typed = (name == "TypeError" && code == "ERR_INVALID_ARG_TYPE") ||
                 (name == "RangeError" && code == "ERR_OUT_OF_RANGE") || (name == "Error" && code == "EPROTO");
    if (!typed) fuzz::Fail("constructor threw %s %s (%s)", name.c_str(), code.c_str(), e.what());
    if ((code == "EPROTO") != (strcmp(why, "magic") == 0)) fuzz::Fail("EPROTO for '%s' (%s)", why, e.what());
    for (int i = 0; i < 3; i++)
      if (memcmp(before[i].data(), maps[i].mem.get(), maps[i].size) != 0) fuzz::Fail("a refused constructor wrote to mapping %d", i);
    return 0;
  }
  if (why) fuzz::Fail("constructor accepted an unsafe placement (%s)", why);

  // A full ring's worth each way: ASan checks every byte stays in place.
  uint32_t tx_size = static_cast<uint32_t>(len[server ? 1 : 0]);
  std::unique_ptr<uint8_t[]> buf(new uint8_t[tx_size]);
  memset(buf.get(), 0x42, tx_size);
  for (int round = 0; round < 2; round++) {
    try {
      fuzz::Call(ep, "write", {w.View(buf.get(), tx_size)});
      fuzz::Call(ep, "read", {w.View(buf.get(), tx_size), w.Num(0), w.Num(tx_size)});
    } catch (const Napi::Error& e) {
      if (e.Code() != "EPROTO") fuzz::Fail("ring call threw %s (%s)", e.Code().c_str(), e.what());
    }
  }
  return 0;
}
