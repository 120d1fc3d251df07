// The shared control page of libxenvchan (xen/include/public/io/libxenvchan.h),
// restated from its documented layout, plus xenring's optional extension area.
// All fields are little-endian on the platforms Xen supports.
#pragma once
#include <cstddef>
#include <cstdint>

namespace xenring {
namespace vchan {

constexpr size_t kPageSize = 4096;

// Ring headers: "left" = client->server, "right" = server->client.
constexpr size_t kLeftCons = 0;     // u32, written by the server
constexpr size_t kLeftProd = 4;     // u32, written by the client
constexpr size_t kRightCons = 8;    // u32, written by the client
constexpr size_t kRightProd = 12;   // u32, written by the server
constexpr size_t kLeftOrder = 16;   // u16, server, once
constexpr size_t kRightOrder = 18;  // u16, server, once
constexpr size_t kCliLive = 20;     // u8: 0 gone, 1 connected, 2 not yet connected
constexpr size_t kSrvLive = 21;     // u8: 0 gone, 1 alive
constexpr size_t kCliNotify = 22;   // u8 bits the server sets to ask the client
constexpr size_t kSrvNotify = 23;   // u8 bits the client sets to ask the server
constexpr size_t kGrants = 24;      // u32[]: grant refs of out-of-page ring pages
constexpr size_t kHeaderSize = 24;

// Values of the live bytes.
constexpr uint8_t kLiveGone = 0;
constexpr uint8_t kLiveConnected = 1;
constexpr uint8_t kLiveWaiting = 2;  // client only: the server is waiting for it

constexpr uint8_t kNotifyWrite = 0x1;  // "tell me when you produce data"
constexpr uint8_t kNotifyRead = 0x2;   // "tell me when you consume data"

// In-page ring slots for orders 10 and 11.
constexpr size_t kInPageOrder10Offset = 1024;
constexpr size_t kInPageOrder11Offset = 2048;

constexpr int kMinOrder = 10;
constexpr int kMaxXenOrder = 20;  // libxenvchan's MAX_RING_SHIFT
constexpr int kMaxOrder = 26;     // local transport may go beyond vchan's limit

// xenring extension (only between two xenring endpoints, which use
// out-of-page rings so that bytes 3072.. of the control page are free):
// a half-close flag per direction, which plain vchan lacks, and a pool byte
// per side (lib/pool/lazy_open.ts: "I announce my pool's opening here" and
// "my pool sender has opened"), which an older xenring never writes or reads.
constexpr size_t kExtMagic = 3072;  // u32 = kExtMagicValue, set by the server
constexpr size_t kExtCliFin = 3076; // u8: client wrote its last byte
constexpr size_t kExtSrvFin = 3077; // u8: server wrote its last byte
constexpr size_t kExtCliPool = 3078; // u8: client's pool byte (written by the client only)
constexpr size_t kExtSrvPool = 3079; // u8: server's pool byte (written by the server only)
constexpr size_t kExtPoolWord = kExtCliFin;  // the u32 that holds both fin and both pool bytes
constexpr size_t kExtEnd = 3080;
constexpr uint32_t kExtMagicValue = 0x31585258;  // "XRX1"

}  // namespace vchan
}  // namespace xenring
