//! `sheepdog-raw-client upload|download|delete ADDR VDI [FILE]`: the benchmark's baseline,
//! a client that moves an image's bytes straight between a file and a Sheepdog VDI over
//! the raw protocol, as `dog vdi write` / `dog vdi read` / `dog vdi delete` would: one
//! request per whole object (CREATE_AND_WRITE_OBJ, then the 4-byte inode update), reads of
//! whole objects, deletes that zero the block map before DEL_VDI. No Tank, no HTTP, no
//! plugin ABI, no checksum: what is left is the protocol and the server.
//!
//! It uses the sheepdog store's codec (`tank_plugin_sheepdog::proto`) for the headers, as
//! `dog` uses its own library; it does not use the store. A test tool, never installed.

use std::{
    fs::File,
    io::{Read, Write},
    net::TcpStream,
};

use anyhow::{bail, ensure, Context, Result};
use tank_plugin_sheepdog::proto::{
    inode, name_payload, oid, opcode, u32_at, u64_at, Args, Request, Response, ResultCode, FLAG_WRITE, HEADER_LEN,
};

const SHIFT: u8 = 22;
const OBJECT: usize = 1 << SHIFT;

struct Conn(TcpStream, u32);

impl Conn {
    fn call(&mut self, opcode: u8, args: Args, payload: &[u8], want: u32) -> Result<(Response, Vec<u8>)> {
        self.1 += 1;
        let (flags, data_length) = if payload.is_empty() { (0, want) } else { (FLAG_WRITE, payload.len() as u32) };
        self.0.write_all(&Request { opcode, flags, id: self.1, data_length, args }.encode())?;
        self.0.write_all(payload)?;
        let mut h = [0u8; HEADER_LEN];
        self.0.read_exact(&mut h)?;
        let rsp = Response::decode(&h);
        let mut data = vec![0u8; rsp.data_length as usize];
        self.0.read_exact(&mut data)?;
        ensure!(rsp.result == ResultCode::SUCCESS, "opcode 0x{opcode:02x} was answered {}", rsp.result);
        Ok((rsp, data))
    }

    /// The VDI fields of a lookup or delete of the current VDI.
    fn current() -> Args {
        Args::Vdi { vdi_size: 0, base_vdi_id: 0, block_size_shift: 0, snapid: 0 }
    }

    fn lookup(&mut self, name: &str) -> Result<u32> {
        let payload = name_payload(name, false).context("a VDI name")?;
        Ok(self.call(opcode::GET_VDI_INFO, Conn::current(), &payload, 0)?.0.vdi_id())
    }

    fn map(&mut self, vid: u32, count: u32) -> Result<Vec<u32>> {
        let args = Args::Obj { oid: oid::inode(vid), offset: inode::entry(0) };
        let (_, d) = self.call(opcode::READ_OBJ, args, &[], 4 * count)?;
        Ok(d.chunks_exact(4).map(|c| u32_at(c, 0)).collect())
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [verb, addr, name, rest @ ..] = args.as_slice() else {
        bail!("usage: sheepdog-raw-client upload|download|delete ADDR VDI [FILE]")
    };
    let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut c = Conn(stream, 0);
    match verb.as_str() {
        "upload" => {
            let path = rest.first().context("upload needs a FILE")?;
            let mut file = File::open(path)?;
            let size = file.metadata()?.len();
            let payload = name_payload(name, false).context("a VDI name")?;
            let args = Args::Vdi { vdi_size: size, base_vdi_id: 0, block_size_shift: SHIFT, snapid: 0 };
            let vid = c.call(opcode::NEW_VDI, args, &payload, 0)?.0.vdi_id();
            let mut buf = vec![0u8; OBJECT];
            for idx in 0.. {
                let mut n = 0;
                while n < OBJECT {
                    let got = file.read(&mut buf[n..])?;
                    if got == 0 {
                        break;
                    }
                    n += got;
                }
                if n == 0 {
                    break;
                }
                let obj = Args::Obj { oid: oid::data(vid, idx), offset: 0 };
                c.call(opcode::CREATE_AND_WRITE_OBJ, obj, &buf[..n], 0)?;
                let entry = Args::Obj { oid: oid::inode(vid), offset: inode::entry(idx) };
                c.call(opcode::WRITE_OBJ, entry, &vid.to_le_bytes(), 0)?;
            }
        }
        "download" => {
            let vid = c.lookup(name)?;
            let args = Args::Obj { oid: oid::inode(vid), offset: 0 };
            let (_, header) = c.call(opcode::READ_OBJ, args, &[], inode::DATA_VDI_ID as u32)?;
            let size = u64_at(&header, inode::VDI_SIZE);
            let count = size.div_ceil(OBJECT as u64) as u32;
            let map = c.map(vid, count)?;
            let mut out = std::io::BufWriter::with_capacity(OBJECT, std::io::stdout().lock());
            for (idx, owner) in map.into_iter().enumerate() {
                let len = (size - idx as u64 * OBJECT as u64).min(OBJECT as u64) as u32;
                if owner == 0 {
                    out.write_all(&vec![0u8; len as usize])?;
                    continue;
                }
                let args = Args::Obj { oid: oid::data(owner, idx as u32), offset: 0 };
                out.write_all(&c.call(opcode::READ_OBJ, args, &[], len)?.1)?;
            }
            out.flush()?;
        }
        "delete" => {
            let vid = c.lookup(name)?;
            let map = c.map(vid, inode::MAX_DATA_OBJS as u32)?;
            if let Some(last) = map.iter().rposition(|&e| e != 0) {
                let args = Args::Obj { oid: oid::inode(vid), offset: inode::entry(0) };
                c.call(opcode::WRITE_OBJ, args, &vec![0u8; 4 * (last + 1)], 0)?;
            }
            let payload = name_payload(name, true).context("a VDI name")?;
            c.call(opcode::DEL_VDI, Conn::current(), &payload, 0)?;
        }
        other => bail!("unknown verb {other}: upload, download or delete"),
    }
    Ok(())
}
