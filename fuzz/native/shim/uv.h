// Fake of the one libuv call native/errors.cc makes (uv_err_name), for the
// fuzz builds that compile without Node's headers.
#pragma once
extern "C" const char* uv_err_name(int err);
