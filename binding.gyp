{
  "targets": [
    {
      "target_name": "xenring",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/fast_copy.cc",
        "native/fd_watcher.cc",
        "native/shared_mapping.cc",
        "native/local_primitives.cc",
        "native/notifier.cc",
        "native/pool_mapping.cc",
        "native/pool_queue.cc",
        "native/returned_buffers.cc",
        "native/ring_endpoint.cc",
        "native/ring_endpoint_bound.cc",
        "native/xen_devices.cc",
        "native/xen_pool.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"]
    }
  ]
}
