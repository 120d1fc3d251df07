// The standalone driver sets this to save the input that is about to crash
// (libFuzzer saves its own crash artifacts).
#pragma once

namespace fuzz {
inline void (*g_on_failure)() = nullptr;
}
