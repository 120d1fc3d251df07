// External Buffers whose finalizer's ownership is explicit. Once N-API's
// preamble has passed, napi_create_external_buffer owns the finalizer: it
// runs it (at once, at a GC or at the environment's teardown) even when the
// call then fails, as it does for a worker being terminated, whose Buffer
// set-up can fail after the memory was registered. Only a refusal before that
// (a pending exception, an environment that may no longer run JS, a runtime
// without external buffers) leaves the undoing to the caller. (node-addon-api's
// Buffer::New frees its own finalizer data on any failure, which a finalizer
// already registered would then use.)
#pragma once
#include <napi.h>

namespace xenring {

// A Buffer over [data, data + length) whose collection calls finalize(env,
// data, hint). On failure it throws, after setting *taken: true when
// `finalize` runs (or ran) anyway, false when the caller still owns `hint`
// and whatever it stands for.
inline Napi::Value NewExternalBuffer(napi_env env, void* data, size_t length, napi_finalize finalize, void* hint,
                                     bool* taken) {
  napi_value result = nullptr;
  napi_status status = napi_create_external_buffer(env, length, data, finalize, hint, &result);
  *taken = status == napi_ok || result != nullptr ||
           !(status == napi_pending_exception || status == napi_cannot_run_js ||
             status == napi_no_external_buffers_allowed || status == napi_invalid_arg);
  NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  return Napi::Value(env, result);
}

}  // namespace xenring
