#!/usr/bin/env python3
"""Seeds the fuzz corpus from the real Ceph captures in tests/data/captures.

Writes preambles, whole streams, control payloads and addresses taken from real frames, so
the fuzzers start from inputs real Ceph produces. Re-run after adding captures.
"""
import hashlib, os, struct, glob

here = os.path.dirname(os.path.abspath(__file__))
caps = os.path.join(here, "..", "..", "tests", "data", "captures")

def put(target, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(here, "corpus", target, name), "wb") as f:
        f.write(data)

def frames(stream):
    pos = 26
    while pos + 32 <= len(stream):
        pre = stream[pos:pos + 32]
        tag, n = pre[0], pre[1]
        if not 1 <= n <= 4 or not 1 <= tag <= 22:
            return
        lens = [struct.unpack_from("<I", pre, 2 + 6 * i)[0] for i in range(4)]
        body = pos + 32
        segs = []
        end = body
        for i in range(n):
            segs.append(stream[end:end + lens[i]])
            end += lens[i]
            if i == 0 and lens[0] > 0:
                end += 4
        if n > 1:
            end += 13
        if end > len(stream):
            return
        yield pos, end, tag, pre, segs
        pos = end

for path in sorted(glob.glob(os.path.join(caps, "crc-*.bin"))):
    s = open(path, "rb").read()
    put("preamble", s[:26] + b"\0" * 6)
    fs = list(frames(s))
    if fs:
        cut = max(e for _, e, *_ in fs if e <= 4096) if any(e <= 4096 for _, e, *_ in fs) else fs[0][1]
        put("frame_decoder", b"\x00" + s[26:cut])
        put("frame_decoder", b"\x0e" + s[26:cut])
    for pos, end, tag, pre, segs in fs:
        put("preamble", pre)
        put("control_payload", bytes([tag]) + segs[0])
        if tag == 1:  # HELLO: entity type + entity_addr_t
            put("addr", segs[0][1:])
        if tag in (8, 9, 11):  # CLIENT_IDENT, SERVER_IDENT, SESSION_RECONNECT start with an addrvec
            put("addr", segs[0])

for text in ["v2:127.0.0.1:3300/0", "[v2:127.0.0.1:3300/0,v1:127.0.0.1:6789/0]", "127.0.0.1",
             "v1:[::1]:6789/0", "1.2.3.4:6789,1.2.3.5;[::1]", "any:10.0.0.1:0/123", "-"]:
    put("addr", text.encode())
