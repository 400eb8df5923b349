#!/usr/bin/env python3
"""rados_probe.py MON AUTH MODE KEYRING ID: python3-rados (librados) connects to the monitor
at MON as client.ID with auth AUTH (cephx or none), connection mode MODE (crc or secure) and
KEYRING, and prints the outcome. The interop tests feed it on stdin to the python3 of the
Ceph under test (`cluster.sh run DIR python3 - ARGS`), so it needs no file inside a chroot."""
import sys

import rados

mon, auth, mode, keyring, rid = sys.argv[1:6]
conf = {
    "mon_host": mon,
    "auth_client_required": auth,
    "keyring": keyring,
    "ms_mon_client_mode": mode,
    "ms_client_mode": mode,
    "client_mount_timeout": "10",
}
print("librados", rados.Rados(conffile="/dev/null").version(), flush=True)
cluster = rados.Rados(conffile="/dev/null", rados_id=rid, conf=conf)
try:
    cluster.connect(timeout=10)
    print("connected, fsid", cluster.get_fsid(), flush=True)
except rados.Error as e:
    print("connect failed:", e, flush=True)
    sys.exit(1)
finally:
    cluster.shutdown()
