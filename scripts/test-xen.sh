#!/usr/bin/env bash
# Runs the Xen transport suite on real Xen (xen-lab): unit tests, the dom0
# suite (loopback, interop with libxenvchan, peer death, many connections) and
# dom0 <-> domU tests with test/xen/domu-peer.js in the domU. Needs root and
# ../shared/xen-lab (see docs/xen.md). Exit status: 0 only if dom0 and domU
# both passed.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB="${XENLAB_RUN:-../shared/xen-lab/run.sh}"
if [ ! -x "$LAB" ]; then
  echo "test:xen: xen-lab not found at $LAB" >&2
  exit 2
fi
if ! "$LAB" --check >/dev/null 2>&1; then
  echo "test:xen: the lab cannot run on this machine:" >&2
  "$LAB" --check >&2 || true
  exit 2
fi
# The lab copies build/ and dist/ as they are: build them on the host first.
if [ ! -f build/Release/xenring.node ] || [ ! -f dist/transports/xen/handshake.js ]; then
  npm run build
fi
exec "$LAB" --timeout "${XENLAB_TIMEOUT:-600}" --domu --domu-cmd 'node test/xen/domu-peer.js' -- bash -c '
  npx mocha --no-config --timeout 300000 test/xen/unit.test.js test/xen/dom0.test.js test/xen/domu.test.js test/xen/socket.test.js test/xen/load.test.js test/xen/pool.test.js test/xen/teardown.test.js
  rc=$?
  if [ $rc -eq 0 ]; then xenlab-wait-domu --timeout 120; else xenlab-wait-domu -q --timeout 5; fi
  d=$?
  echo "test:xen: dom0 suite status $rc, domU peer status $d"
  [ $rc -eq 0 ] && [ $d -eq 0 ]'
