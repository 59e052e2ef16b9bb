//! A blocking connection to one sheep, each wait bounded by the store's timeout (connect,
//! send, answer), and the few operations the store needs, each returning the store's
//! errors.
//!
//! Sheepdog allows several requests in flight on a connection. This client waits for each
//! answer, except for an upload's objects: [`Conn::start_object`] sends one and returns, so
//! that the sheep stores it while the writer gathers the next (one in flight at most).
//! Every transfer has its own connection, and the host's 1 MiB pieces already amortise a
//! round trip (docs/benchmarks.md measures it).

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use tank_sdk::{Error, Result};

use crate::{
    error::{from_io, from_result},
    proto::{self, opcode, Args, InodeHeader, Request, Response, ResultCode, FLAG_WRITE, HEADER_LEN},
};

/// Where the store's sheep is, and what its errors are called.
#[derive(Debug, Clone)]
pub struct Target {
    /// The store's name, first in every message.
    pub store: String,
    /// The sheep's address (a host name or an IP address).
    pub address: String,
    /// The sheep's port.
    pub port: u16,
    /// The bound of every wait.
    pub timeout: Duration,
}

impl Target {
    /// `store '<name>': <action> at <address>:<port>`.
    pub fn what(&self, action: impl std::fmt::Display) -> String {
        format!("store '{}': {action} at sheepdog {}:{}", self.store, self.address, self.port)
    }

    /// Opens a connection, waiting at most `timeout` for it (for each address the name
    /// resolves to), with every later read and write bounded by it too.
    pub fn connect(&self, timeout: Duration) -> Result<Conn> {
        let what = self.what("connecting");
        let addrs = (self.address.as_str(), self.port).to_socket_addrs().map_err(|e| from_io(&what, &e))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    let set = |s: &TcpStream| {
                        s.set_read_timeout(Some(timeout))?;
                        s.set_write_timeout(Some(timeout))?;
                        s.set_nodelay(true)
                    };
                    set(&stream).map_err(|e| from_io(&what, &e))?;
                    return Ok(Conn { stream, target: self.clone(), next_id: 1 });
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| std::io::Error::other(format!("{} resolves to no address", self.address)));
        Err(from_io(&what, &e))
    }
}

/// One open connection.
pub struct Conn {
    stream: TcpStream,
    target: Target,
    next_id: u32,
}

/// A request sent whose answer is still to be read.
pub struct Pending {
    id: u32,
    opcode: u8,
    want: u32,
    what: String,
}

/// A VDI found by name: its vid and inode header.
#[derive(Debug, Clone)]
pub struct Vdi {
    /// Its vid.
    pub vid: u32,
    /// Its inode's header.
    pub header: InodeHeader,
}

impl Conn {
    /// Sends one request (`payload` only with WRITE) and returns the answer's header and
    /// data. A socket failure is `UNAVAILABLE`; result codes are the caller's to judge.
    fn call(&mut self, what: &str, opcode: u8, args: Args, payload: &[u8], want: u32) -> Result<(Response, Vec<u8>)> {
        let pending = self.send(what, opcode, args, payload, want)?;
        self.receive(&pending)
    }

    /// Sends one request without waiting for its answer.
    fn send(&mut self, what: &str, opcode: u8, args: Args, payload: &[u8], want: u32) -> Result<Pending> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let (flags, data_length) = if payload.is_empty() { (0, want) } else { (FLAG_WRITE, payload.len() as u32) };
        let header = Request { opcode, flags, id, data_length, args }.encode();
        let io = |e: std::io::Error| from_io(what, &e);
        self.stream.write_all(&header).map_err(io)?;
        if !payload.is_empty() {
            self.stream.write_all(payload).map_err(io)?;
        }
        Ok(Pending { id, opcode, want, what: what.to_owned() })
    }

    /// Reads the answer to `pending`, which must be the oldest request not answered yet.
    fn receive(&mut self, pending: &Pending) -> Result<(Response, Vec<u8>)> {
        let Pending { id, opcode, want, ref what } = *pending;
        let io = |e: std::io::Error| from_io(what, &e);
        let mut h = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut h).map_err(io)?;
        let rsp = Response::decode(&h);
        if rsp.id != id || rsp.opcode != opcode {
            return Err(Error::backend(format!(
                "{what} got the answer to another request (id {}, opcode 0x{:02x}); is this a sheep?",
                rsp.id, rsp.opcode
            )));
        }
        // Never trust a length to allocate more than was asked for.
        if rsp.data_length > want.max(HEADER_LEN as u32) {
            return Err(Error::backend(format!("{what} got {} bytes, {want} were asked for", rsp.data_length)));
        }
        let mut data = vec![0u8; rsp.data_length as usize];
        self.stream.read_exact(&mut data).map_err(io)?;
        Ok((rsp, data))
    }

    /// `call`, with anything but SUCCESS an error.
    fn ok(&mut self, what: &str, opcode: u8, args: Args, payload: &[u8], want: u32) -> Result<(Response, Vec<u8>)> {
        let (rsp, data) = self.call(what, opcode, args, payload, want)?;
        if rsp.result != ResultCode::SUCCESS {
            return Err(from_result(what, rsp.result));
        }
        Ok((rsp, data))
    }

    fn name(&self, name: &str, with_tag: bool) -> Result<Vec<u8>> {
        proto::name_payload(name, with_tag).ok_or_else(|| {
            Error::invalid_input(self.target.what(format_args!("{name:?} cannot be a VDI name (1 to 255 bytes)")))
        })
    }

    /// NEW_VDI: creates VDI `name` of `size` bytes with objects of `1 << shift` bytes;
    /// returns its vid and the shift the cluster chose. `DUPLICATE` when the name is taken.
    pub fn new_vdi(&mut self, name: &str, size: u64, shift: u8) -> Result<(u32, u8)> {
        let what = self.target.what(format_args!("creating VDI {name}"));
        let payload = self.name(name, false)?;
        let args = Args::Vdi { vdi_size: size, base_vdi_id: 0, block_size_shift: shift, snapid: 0 };
        let (rsp, _) = self.ok(&what, opcode::NEW_VDI, args, &payload, 0)?;
        let got = rsp.vdi_block_size_shift();
        Ok((rsp.vdi_id(), if got == 0 { shift } else { got }))
    }

    /// GET_VDI_INFO of the current VDI `name`: its vid, or `None` when there is none.
    pub fn lookup(&mut self, name: &str) -> Result<Option<u32>> {
        let what = self.target.what(format_args!("looking up VDI {name}"));
        let payload = self.name(name, false)?;
        let args = Args::Vdi { vdi_size: 0, base_vdi_id: 0, block_size_shift: 0, snapid: 0 };
        let (rsp, _) = self.call(&what, opcode::GET_VDI_INFO, args, &payload, 0)?;
        match rsp.result {
            ResultCode::SUCCESS => Ok(Some(rsp.vdi_id())),
            ResultCode::NO_VDI => Ok(None),
            code => Err(from_result(&what, code)),
        }
    }

    /// Looks up VDI `name` and reads its inode header; `None` when there is no such VDI.
    pub fn open(&mut self, name: &str) -> Result<Option<Vdi>> {
        let Some(vid) = self.lookup(name)? else { return Ok(None) };
        let what = self.target.what(format_args!("reading the inode of VDI {name}"));
        let (_, data) =
            self.ok(&what, opcode::READ_OBJ, Args::Obj { oid: proto::oid::inode(vid), offset: 0 }, &[], HEADER_INODE)?;
        let header = InodeHeader::parse(&data)
            .ok_or_else(|| Error::backend(format!("{what} gave {} bytes, not an inode header", data.len())))?;
        if header.name != name || header.is_snapshot {
            return Err(Error::backend(format!(
                "{what}: vid {vid:#x} holds {:?}{}, not the VDI asked for",
                header.name,
                if header.is_snapshot { " (a snapshot)" } else { "" }
            )));
        }
        Ok(Some(Vdi { vid, header }))
    }

    /// The `data_vdi_id` entries `first..first + count` of VDI `vid`.
    pub fn map(&mut self, vid: u32, first: u32, count: u32) -> Result<Vec<u32>> {
        let what = self.target.what(format_args!("reading the block map of vid {vid:#x}"));
        let args = Args::Obj { oid: proto::oid::inode(vid), offset: proto::inode::entry(first) };
        let (_, data) = self.ok(&what, opcode::READ_OBJ, args, &[], 4 * count)?;
        if data.len() != 4 * count as usize {
            return Err(Error::backend(format!("{what} gave {} bytes, {} were asked for", data.len(), 4 * count)));
        }
        Ok(data.chunks_exact(4).map(|c| proto::u32_at(c, 0)).collect())
    }

    /// Writes `entries` into VDI `vid`'s `data_vdi_id` from entry `first`: the gateway
    /// notices and updates its references (and drops objects set to 0).
    pub fn set_map(&mut self, vid: u32, first: u32, entries: &[u32]) -> Result<()> {
        let what = self.target.what(format_args!("updating the block map of vid {vid:#x}"));
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        let args = Args::Obj { oid: proto::oid::inode(vid), offset: proto::inode::entry(first) };
        self.ok(&what, opcode::WRITE_OBJ, args, &bytes, 0).map(drop)
    }

    /// Writes the inode's `vdi_size` field: how a VDI is resized (what `dog vdi resize`
    /// does), and how this store records an upload's real size at `finish`.
    pub fn set_size(&mut self, vid: u32, size: u64) -> Result<()> {
        let what = self.target.what(format_args!("recording the size of vid {vid:#x}"));
        let args = Args::Obj { oid: proto::oid::inode(vid), offset: proto::inode::VDI_SIZE as u32 };
        self.ok(&what, opcode::WRITE_OBJ, args, &size.to_le_bytes(), 0).map(drop)
    }

    /// Starts a CREATE_AND_WRITE_OBJ of data object `idx` of `vid` from its start, and
    /// returns once `data` is sent, without waiting for the answer: the sheep stores the
    /// object while the caller gathers the next one. [`Conn::wait`] reads the answer.
    pub fn start_object(&mut self, vid: u32, idx: u32, data: &[u8]) -> Result<Pending> {
        let what = self.target.what(format_args!("writing object {idx} of vid {vid:#x}"));
        let args = Args::Obj { oid: proto::oid::data(vid, idx), offset: 0 };
        self.send(&what, opcode::CREATE_AND_WRITE_OBJ, args, data, 0)
    }

    /// Waits for the answer to a request [`Conn::start_object`] sent; anything but
    /// SUCCESS is an error.
    pub fn wait(&mut self, pending: Pending) -> Result<()> {
        let (rsp, _) = self.receive(&pending)?;
        if rsp.result != ResultCode::SUCCESS {
            return Err(from_result(&pending.what, rsp.result));
        }
        Ok(())
    }

    /// REMOVE_OBJ of data object `idx` of `vid`; an object that does not exist is fine.
    pub fn remove_object(&mut self, vid: u32, idx: u32) -> Result<()> {
        let what = self.target.what(format_args!("removing object {idx} of vid {vid:#x}"));
        let args = Args::Obj { oid: proto::oid::data(vid, idx), offset: 0 };
        let (rsp, _) = self.call(&what, opcode::REMOVE_OBJ, args, &[], 0)?;
        match rsp.result {
            ResultCode::SUCCESS | ResultCode::NO_OBJ => Ok(()),
            code => Err(from_result(&what, code)),
        }
    }

    /// READ_OBJ of `len` bytes of data object `idx` owned by `owner`, from `offset`.
    pub fn read_object(&mut self, owner: u32, idx: u32, offset: u32, len: u32) -> Result<Vec<u8>> {
        let what = self.target.what(format_args!("reading object {idx} of vid {owner:#x}"));
        let args = Args::Obj { oid: proto::oid::data(owner, idx), offset };
        let (rsp, data) = self.call(&what, opcode::READ_OBJ, args, &[], len)?;
        match rsp.result {
            ResultCode::SUCCESS if data.len() == len as usize => Ok(data),
            ResultCode::SUCCESS => {
                Err(Error::backend(format!("{what} gave {} bytes, {len} were asked for", data.len())))
            }
            // The block map says the object exists: its absence is damage, not a hole.
            ResultCode::NO_OBJ => Err(Error::backend(format!(
                "{what}: the block map lists the object but the cluster has none (NO_OBJ); the image is damaged"
            ))),
            code => Err(from_result(&what, code)),
        }
    }

    /// DEL_VDI of `name` (with an empty tag, as `dog vdi delete` sends it). Effective only
    /// once every `data_vdi_id` entry is 0 (§4.7); [`Conn::delete`] does both.
    pub fn del_vdi(&mut self, name: &str) -> Result<()> {
        let what = self.target.what(format_args!("deleting VDI {name}"));
        let payload = self.name(name, true)?;
        let args = Args::Vdi { vdi_size: 0, base_vdi_id: 0, block_size_shift: 0, snapid: 0 };
        self.ok(&what, opcode::DEL_VDI, args, &payload, 0).map(drop)
    }

    /// Deletes VDI `name` (vid `vid`) the way that works: every nonzero `data_vdi_id`
    /// entry among the first `blocks` set to 0 (the gateway then drops the objects), then
    /// DEL_VDI, then a lookup to make sure the VDI is really gone. A bare DEL_VDI answers
    /// SUCCESS and leaves everything in place.
    pub fn delete(&mut self, name: &str, vid: u32, blocks: u64) -> Result<()> {
        const BATCH: u32 = 64 * 1024;
        let blocks = blocks.min(proto::inode::MAX_DATA_OBJS) as u32;
        let mut first = 0;
        while first < blocks {
            let count = BATCH.min(blocks - first);
            let entries = self.map(vid, first, count)?;
            if let (Some(lo), Some(hi)) = (entries.iter().position(|&e| e != 0), entries.iter().rposition(|&e| e != 0))
            {
                self.set_map(vid, first + lo as u32, &vec![0; hi - lo + 1])?;
            }
            first += count;
        }
        self.del_vdi(name)?;
        if self.lookup(name)?.is_some() {
            return Err(Error::backend(self.target.what(format_args!(
                "VDI {name} is still there after its block map was zeroed and DEL_VDI succeeded; \
                 delete it with `dog vdi delete {name}`"
            ))));
        }
        Ok(())
    }

    /// GET_CLUSTER_DEFAULT: the cluster's block size shift; proves the sheep answers and
    /// the cluster is formatted.
    pub fn cluster_default(&mut self) -> Result<u8> {
        let what = self.target.what("asking for the cluster's defaults");
        let (rsp, _) = self.ok(&what, opcode::GET_CLUSTER_DEFAULT, Args::None, &[], 0)?;
        Ok(rsp.cluster_block_size_shift())
    }
}

/// How much of an inode `open` reads: the header.
const HEADER_INODE: u32 = proto::inode::DATA_VDI_ID as u32;
