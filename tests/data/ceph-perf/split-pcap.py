import struct,sys
data=open(sys.argv[1],'rb').read()
off=24; conns={}; order=[]
while off<len(data):
    ts,tu,incl,orig=struct.unpack_from('<IIII',data,off); off+=16
    pkt=data[off:off+incl]; off+=incl
    ip=pkt[14:]; ihl=(ip[0]&15)*4; tot=struct.unpack_from('>H',ip,2)[0]
    src=ip[12:16]; dst=ip[16:20]; tcp=ip[ihl:tot]
    sp,dp,seq=struct.unpack_from('>HHI',tcp,0); doff=(tcp[12]>>4)*4; flags=tcp[13]
    payload=tcp[doff:]
    key=(sp,dp)
    if flags&2:  # SYN
        conns[key]={'isn':seq+1,'segs':{}}
        if dp==3800: order.append((sp,dp))
        continue
    if key in conns and payload:
        conns[key]['segs'][seq-conns[key]['isn']]=payload
for i,(cp,sp) in enumerate(order):
    for d,key in (('c2s',(cp,sp)),('s2c',(sp,cp))):
        segs=conns[key]['segs']; buf=bytearray(); 
        for o in sorted(segs):
            p=segs[o]
            if o<=len(buf): buf[o:]=p if o+len(p)>len(buf) else buf[o:]
            else: raise SystemExit('gap')
        open(f'{sys.argv[2]}.conn{i}.{d}.bin','wb').write(buf); print(i,d,len(buf))
