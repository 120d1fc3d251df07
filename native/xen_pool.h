// The pool's Xen pages (docs/pool.md, "Memory layout"): a sender's region is
// granted once per connection with gntalloc and mapped once by the receiver
// with gntdev, each as a PoolMapping (native/pool_mapping.h) whose last
// holder's munmap frees the grants. Registered on the addon's `xen` object by
// InitXenPool (declared in xen_devices.h).
#pragma once
