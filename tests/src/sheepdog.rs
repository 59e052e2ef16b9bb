//! A Sheepdog protocol test server: what the sheepdog store's suites and benchmark run
//! against, because Sheepdog has no Debian package (and its last release is from 2018).
//!
//! It is written from `/work/shared/reference/sheepdog-protocol.md` alone, independently of
//! the store's codec, so that a misreading of the reference in one does not hide in the
//! other. It behaves as a one-node cluster formatted with one copy and 4 MiB objects:
//!
//! - VDIs: NEW_VDI (exactly 256 name bytes, vid = FNV-1a of the name masked to 24 bits,
//!   then the next free vid after the run of used ones; deleted vids stay used), LOCK_VDI
//!   and GET_VDI_INFO (lookups walking the same run; LOCK_VDI does not lock, as on a
//!   cluster formatted without `-l`), RELEASE_VDI, READ_VDIS, GET_CLUSTER_DEFAULT.
//! - Objects: CREATE_AND_WRITE_OBJ (sparse, full size), READ_OBJ (holes as zeros; NO_OBJ
//!   for an object never written), WRITE_OBJ (NO_OBJ unless it exists), REMOVE_OBJ.
//!   Data objects are sparse files in a temp dir, so a 1 GiB benchmark costs disk, not RAM.
//! - Inodes: the 4,664-byte header and the `data_vdi_id` map, readable and writable at any
//!   offset; setting a map entry from the VDI's own vid to 0 drops that data object, as
//!   the gateway does.
//! - DEL_VDI: with every map entry 0, the VDI becomes a tombstone (empty name, size 0,
//!   vid still used). With objects still mapped it answers SUCCESS and does nothing but
//!   hide the VDI from listings: GET_VDI_INFO still finds it and its objects stay, as the
//!   reference found on a real cluster.
//!
//! Not implemented (answered INVALID_PARMS): snapshots and clones (a nonzero snapid or
//! base vid, copy-on-write creates), erasure coding, hyper volumes, internal opcodes.
//!
//! Tests can make the next request of an opcode fail with a chosen result code
//! ([`TestServer::fail`]), and look at its state directly ([`TestServer::vdis`], [`TestServer::objects`],
//! [`TestServer::leftovers`]). It is never shipped: it lives in the tests crate, which
//! `cargo xtask dist` does not install.

use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
};

/// The size of request and response headers.
pub const HEADER: usize = 48;
/// The inode header's length, where `data_vdi_id` starts.
pub const INODE_HEADER: usize = 4664;
/// `data_vdi_id` entries per inode (store policy 0).
pub const MAX_OBJS: u64 = 1 << 20;
/// The inode object's length.
pub const INODE_LEN: u64 = INODE_HEADER as u64 + 12 * MAX_OBJS;
/// The cluster's default block size shift (4 MiB objects).
pub const DEFAULT_SHIFT: u8 = 22;

/// Result codes the server answers.
pub mod result {
    /// Success.
    pub const SUCCESS: u32 = 0x00;
    /// An opcode the server does not know.
    pub const UNKNOWN: u32 = 0x01;
    /// No such object.
    pub const NO_OBJ: u32 = 0x02;
    /// An IO error.
    pub const EIO: u32 = 0x03;
    /// The VDI name is taken.
    pub const VDI_EXIST: u32 = 0x04;
    /// A malformed request.
    pub const INVALID_PARMS: u32 = 0x05;
    /// No such VDI.
    pub const NO_VDI: u32 = 0x08;
    /// No snapshot with that tag.
    pub const NO_TAG: u32 = 0x0E;
    /// Every vid is used.
    pub const FULL_VDI: u32 = 0x13;
    /// The cluster halted.
    pub const HALT: u32 = 0x19;
    /// The cluster is full.
    pub const NO_SPACE: u32 = 0x15;
    /// A protocol version above 2.
    pub const VER_MISMATCH: u32 = 0x14;
}

/// The 64-bit FNV-1a hash of `name` masked to 24 bits: where vid allocation starts.
pub fn fnv1a_vid(name: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h & 0x00ff_ffff) as u32
}

/// One VDI as the server keeps it.
#[derive(Debug, Clone)]
struct Vdi {
    /// The inode header bytes (name, size, shift, vid...).
    header: Vec<u8>,
    /// The nonzero `data_vdi_id` entries.
    map: BTreeMap<u32, u32>,
    /// A bare DEL_VDI hid it from listings (it is still found and still holds data).
    hidden: bool,
}

impl Vdi {
    fn name(&self) -> String {
        let end = self.header[..256].iter().position(|&c| c == 0).unwrap_or(256);
        String::from_utf8_lossy(&self.header[..end]).into_owned()
    }

    fn size(&self) -> u64 {
        u64::from_le_bytes(self.header[536..544].try_into().unwrap())
    }

    fn shift(&self) -> u8 {
        self.header[555]
    }
}

/// What a test sees of a VDI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdiInfo {
    /// Its vid.
    pub vid: u32,
    /// Its name; empty for a tombstone.
    pub name: String,
    /// Its size field.
    pub size: u64,
    /// Hidden from listings by a bare DEL_VDI that could not delete it.
    pub hidden: bool,
    /// How many map entries are nonzero.
    pub mapped: usize,
}

#[derive(Default)]
struct State {
    /// Every vid ever allocated, tombstones included.
    vdis: BTreeMap<u32, Vdi>,
    /// Requests answered, by opcode (what a test can count).
    requests: BTreeMap<u8, u64>,
    /// By opcode: how many more requests to serve, then the result code to answer the
    /// next one with instead of serving it.
    faults: BTreeMap<u8, (u64, u32)>,
}

struct Shared {
    state: Mutex<State>,
    dir: PathBuf,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn object_path(&self, oid: u64) -> PathBuf {
        self.dir.join(format!("{oid:016x}"))
    }
}

/// A running test server on `127.0.0.1:<port>`, stopped on drop.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _dir: Option<tempfile::TempDir>,
}

/// Starts a server on a free loopback port, with its objects in a fresh temp dir.
pub fn start() -> TestServer {
    let dir = tempfile::tempdir().expect("a temp dir for the objects");
    let mut s = start_in(dir.path(), "127.0.0.1:0");
    s._dir = Some(dir);
    s
}

/// Starts a server listening on `listen` (e.g. `127.0.0.1:0`) with its objects in `dir`
/// (which must exist and is left in place).
pub fn start_in(dir: &Path, listen: &str) -> TestServer {
    let listener = TcpListener::bind(listen).expect("the test sheep binds its port");
    let addr = listener.local_addr().unwrap();
    let shared = Arc::new(Shared { state: Mutex::default(), dir: dir.to_path_buf(), stop: AtomicBool::new(false) });
    let accept = shared.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if accept.stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let shared = accept.clone();
            std::thread::spawn(move || serve(&shared, conn));
        }
    });
    TestServer { addr, shared, _dir: None }
}

impl TestServer {
    /// `127.0.0.1` and the port, for a `[store.sheepdog]` table.
    pub fn store_table(&self, extra: &str) -> String {
        format!("address = \"{}\"\nport = {}\n{extra}\n", self.addr.ip(), self.addr.port())
    }

    /// The same as JSON, for opening the store in process.
    pub fn store_json(&self, chunk_size: u64) -> serde_json::Value {
        serde_json::json!({
            "address": self.addr.ip().to_string(),
            "port": self.addr.port(),
            "chunk_size": chunk_size,
        })
    }

    /// Every VDI the server knows, tombstones included, by vid.
    pub fn vdis(&self) -> Vec<VdiInfo> {
        let st = self.shared.lock();
        st.vdis
            .iter()
            .map(|(&vid, v)| VdiInfo { vid, name: v.name(), size: v.size(), hidden: v.hidden, mapped: v.map.len() })
            .collect()
    }

    /// The data objects on "disk", as `(vid, index)`, sorted.
    pub fn objects(&self) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = std::fs::read_dir(&self.shared.dir)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter_map(|e| u64::from_str_radix(&e.file_name().to_string_lossy(), 16).ok())
                    .map(|oid| (((oid >> 32) & 0x00ff_ffff) as u32, oid as u32))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_unstable();
        out
    }

    /// What the cluster still holds: every VDI that is not a tombstone (hidden ones too)
    /// and every data object. Empty means a client deleted everything it wrote.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .vdis()
            .into_iter()
            .filter(|v| !v.name.is_empty())
            .map(|v| format!("VDI {} (vid {:#x}{})", v.name, v.vid, if v.hidden { ", hidden" } else { "" }))
            .collect();
        out.extend(self.objects().into_iter().map(|(vid, idx)| format!("object {idx} of vid {vid:#x}")));
        out
    }

    /// Serves `after` more requests of `opcode`, then answers the next one with result
    /// `code` without serving it: how a test meets a cluster that is full, halted or
    /// failing at a chosen step.
    pub fn fail(&self, opcode: u8, after: u64, code: u32) {
        self.shared.lock().faults.insert(opcode, (after, code));
    }

    /// How many requests of `opcode` the server answered.
    pub fn requests(&self, opcode: u8) -> u64 {
        self.shared.lock().requests.get(&opcode).copied().unwrap_or(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A parsed request.
struct Req {
    proto: u8,
    opcode: u8,
    flags: u16,
    id: u32,
    data_length: u32,
    h: [u8; HEADER],
}

impl Req {
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.h[at..at + 4].try_into().unwrap())
    }

    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.h[at..at + 8].try_into().unwrap())
    }
}

/// An answer: result, the op-specific bytes 20..48 to set, data.
struct Rsp {
    result: u32,
    fields: Vec<(usize, Vec<u8>)>,
    data: Vec<u8>,
}

fn answer(result: u32) -> Rsp {
    Rsp { result, fields: Vec::new(), data: Vec::new() }
}

/// Serves one connection until the client closes it.
fn serve(shared: &Shared, mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    loop {
        let mut h = [0u8; HEADER];
        if conn.read_exact(&mut h).is_err() || shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let req = Req {
            proto: h[0],
            opcode: h[1],
            flags: u16::from_le_bytes([h[2], h[3]]),
            id: u32::from_le_bytes(h[8..12].try_into().unwrap()),
            data_length: u32::from_le_bytes(h[12..16].try_into().unwrap()),
            h,
        };
        let mut payload = Vec::new();
        if req.flags & 0x01 != 0 {
            payload = vec![0u8; req.data_length as usize];
            if conn.read_exact(&mut payload).is_err() {
                return;
            }
        }
        let fault = {
            let mut st = shared.lock();
            match st.faults.get_mut(&req.opcode) {
                Some((0, code)) => {
                    let code = *code;
                    st.faults.remove(&req.opcode);
                    Some(code)
                }
                Some((skip, _)) => {
                    *skip -= 1;
                    None
                }
                None => None,
            }
        };
        let rsp = match fault {
            Some(code) => answer(code),
            None => handle(shared, &req, &payload),
        };
        *shared.lock().requests.entry(req.opcode).or_default() += 1;
        let mut out = vec![0u8; HEADER];
        out[0] = 0x02;
        out[1] = req.opcode;
        // Epoch 1: a cluster formatted once.
        out[4..8].copy_from_slice(&1u32.to_le_bytes());
        out[8..12].copy_from_slice(&req.id.to_le_bytes());
        out[12..16].copy_from_slice(&(rsp.data.len() as u32).to_le_bytes());
        out[16..20].copy_from_slice(&rsp.result.to_le_bytes());
        for (at, bytes) in &rsp.fields {
            out[*at..*at + bytes.len()].copy_from_slice(bytes);
        }
        out.extend_from_slice(&rsp.data);
        if conn.write_all(&out).is_err() {
            return;
        }
    }
}

fn handle(shared: &Shared, req: &Req, payload: &[u8]) -> Rsp {
    if req.proto > 0x02 {
        return answer(result::VER_MISMATCH);
    }
    match req.opcode {
        0x01 => create_and_write(shared, req, payload),
        0x02 => read_obj(shared, req),
        0x03 => write_obj(shared, req, payload),
        0x04 | 0x05 => remove_obj(shared, req),
        0x11 => new_vdi(shared, req, payload),
        0x12 | 0x14 => lookup_op(shared, req, payload),
        0x13 => answer(result::SUCCESS),
        0x15 => read_vdis(shared, req),
        0x17 => del_vdi(shared, req, payload),
        0x18 => Rsp { result: result::SUCCESS, fields: vec![(20, vec![1, 0, DEFAULT_SHIFT])], data: Vec::new() },
        _ => answer(result::UNKNOWN),
    }
}

/// The name in a 256- or 512-byte payload (with the tag after it); `None` otherwise.
fn name_of(payload: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    if payload.len() != 256 && payload.len() != 512 {
        return None;
    }
    let trim = |b: &[u8]| b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())].to_vec();
    let tag = if payload.len() == 512 { trim(&payload[256..]) } else { Vec::new() };
    Some((trim(&payload[..256]), tag))
}

/// The vid of the current VDI `name`: the run of used vids from its hash, compared by
/// stored name.
fn find(st: &State, name: &[u8]) -> Option<u32> {
    let mut vid = fnv1a_vid(name);
    while let Some(v) = st.vdis.get(&vid) {
        if v.header[..256].starts_with(name) && v.header[name.len()] == 0 {
            return Some(vid);
        }
        vid = (vid + 1) & 0x00ff_ffff;
    }
    None
}

fn vdi_fields(vid: u32, shift: u8) -> Vec<(usize, Vec<u8>)> {
    vec![(24, vid.to_le_bytes().to_vec()), (32, vec![1, shift])]
}

fn new_vdi(shared: &Shared, req: &Req, payload: &[u8]) -> Rsp {
    // The reference: exactly 256 bytes, anything else gives INVALID_PARMS.
    if payload.len() != 256 {
        return answer(result::INVALID_PARMS);
    }
    let Some((name, _)) = name_of(payload) else { return answer(result::INVALID_PARMS) };
    let (size, base, shift, snapid) = (req.u64(16), req.u32(24), req.h[31], req.u32(32));
    let shift = if shift == 0 { DEFAULT_SHIFT } else { shift };
    if name.is_empty() || base != 0 || snapid != 0 || req.h[30] != 0 || !(20..=31).contains(&shift) {
        return answer(result::INVALID_PARMS);
    }
    if size > MAX_OBJS << shift {
        return answer(result::INVALID_PARMS);
    }
    let mut st = shared.lock();
    if find(&st, &name).is_some() {
        return answer(result::VDI_EXIST);
    }
    let mut vid = fnv1a_vid(&name);
    let start = vid;
    while st.vdis.contains_key(&vid) {
        vid = (vid + 1) & 0x00ff_ffff;
        if vid == start {
            return answer(result::FULL_VDI);
        }
    }
    let mut header = vec![0u8; INODE_HEADER];
    header[..name.len()].copy_from_slice(&name);
    header[536..544].copy_from_slice(&size.to_le_bytes());
    header[554] = 1;
    header[555] = shift;
    header[560..564].copy_from_slice(&vid.to_le_bytes());
    st.vdis.insert(vid, Vdi { header, map: BTreeMap::new(), hidden: false });
    Rsp { result: result::SUCCESS, fields: vdi_fields(vid, shift), data: Vec::new() }
}

fn lookup_op(shared: &Shared, req: &Req, payload: &[u8]) -> Rsp {
    let Some((name, tag)) = name_of(payload) else { return answer(result::INVALID_PARMS) };
    if !tag.is_empty() || req.u32(32) != 0 {
        // No snapshots exist here.
        return answer(result::NO_TAG);
    }
    let st = shared.lock();
    match find(&st, &name) {
        Some(vid) => Rsp { result: result::SUCCESS, fields: vdi_fields(vid, st.vdis[&vid].shift()), data: Vec::new() },
        None => answer(result::NO_VDI),
    }
}

fn del_vdi(shared: &Shared, req: &Req, payload: &[u8]) -> Rsp {
    let Some((name, tag)) = name_of(payload) else { return answer(result::INVALID_PARMS) };
    if !tag.is_empty() || req.u32(32) != 0 {
        return answer(result::NO_TAG);
    }
    let mut st = shared.lock();
    let Some(vid) = find(&st, &name) else { return answer(result::NO_VDI) };
    let vdi = st.vdis.get_mut(&vid).expect("found");
    if vdi.map.is_empty() {
        // The tombstone: no name, size 0; the vid stays used.
        vdi.header[..512].fill(0);
        vdi.header[536..544].fill(0);
        vdi.hidden = false;
    } else {
        // "vid ... still has objects": SUCCESS, and nothing deleted.
        vdi.hidden = true;
    }
    Rsp { result: result::SUCCESS, fields: vec![(24, vid.to_le_bytes().to_vec())], data: Vec::new() }
}

fn read_vdis(shared: &Shared, req: &Req) -> Rsp {
    if req.data_length != 1 << 21 {
        return answer(result::INVALID_PARMS);
    }
    let mut bits = vec![0u8; 1 << 21];
    for &vid in shared.lock().vdis.keys() {
        bits[(vid / 8) as usize] |= 1 << (vid % 8);
    }
    Rsp { result: result::SUCCESS, fields: Vec::new(), data: bits }
}

/// An object request's oid and offset inside the object.
fn obj_args(req: &Req) -> (u64, u64) {
    (req.u64(16), u64::from(req.u32(40)))
}

fn is_inode(oid: u64) -> bool {
    oid >> 63 == 1
}

fn vid_of(oid: u64) -> u32 {
    ((oid >> 32) & 0x00ff_ffff) as u32
}

/// The size of data object `oid`: its VDI's object size, or the default for a vid the
/// server does not know.
fn object_len(shared: &Shared, oid: u64) -> u64 {
    shared.lock().vdis.get(&vid_of(oid)).map_or(1 << DEFAULT_SHIFT, |v| 1 << v.shift())
}

fn create_and_write(shared: &Shared, req: &Req, payload: &[u8]) -> Rsp {
    let (oid, offset) = obj_args(req);
    // COW creates (flag 0x02) and inode creates are for snapshots and NEW_VDI.
    if is_inode(oid) || req.flags & 0x02 != 0 || oid >> 56 != 0 {
        return answer(result::INVALID_PARMS);
    }
    let len = object_len(shared, oid);
    if offset + payload.len() as u64 > len {
        return answer(result::INVALID_PARMS);
    }
    let path = shared.object_path(oid);
    let r = OpenOptions::new().create(true).truncate(false).write(true).open(&path).and_then(|f| {
        f.set_len(len)?;
        f.write_all_at(payload, offset)
    });
    answer(if r.is_ok() { result::SUCCESS } else { result::EIO })
}

fn open_object(shared: &Shared, oid: u64, write: bool) -> Result<File, u32> {
    OpenOptions::new().read(true).write(write).open(shared.object_path(oid)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            result::NO_OBJ
        } else {
            result::EIO
        }
    })
}

fn read_obj(shared: &Shared, req: &Req) -> Rsp {
    let (oid, offset) = obj_args(req);
    let len = u64::from(req.data_length);
    if is_inode(oid) {
        let st = shared.lock();
        let Some(vdi) = st.vdis.get(&vid_of(oid)) else { return answer(result::NO_OBJ) };
        if offset + len > INODE_LEN {
            return answer(result::INVALID_PARMS);
        }
        let mut data = vec![0u8; len as usize];
        inode_bytes(vdi, offset, &mut data);
        return Rsp { result: result::SUCCESS, fields: Vec::new(), data };
    }
    if offset + len > object_len(shared, oid) {
        return answer(result::INVALID_PARMS);
    }
    let file = match open_object(shared, oid, false) {
        Ok(f) => f,
        Err(code) => return answer(code),
    };
    let mut data = vec![0u8; len as usize];
    match file.read_exact_at(&mut data, offset) {
        Ok(()) => Rsp { result: result::SUCCESS, fields: Vec::new(), data },
        Err(_) => answer(result::EIO),
    }
}

/// Fills `out` with the inode's bytes from `offset`: header, map, zeros (generation
/// references the server keeps no track of).
fn inode_bytes(vdi: &Vdi, offset: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        let at = offset + i as u64;
        *b = if at < INODE_HEADER as u64 {
            vdi.header[at as usize]
        } else if at < INODE_HEADER as u64 + 4 * MAX_OBJS {
            let rel = at - INODE_HEADER as u64;
            let entry = vdi.map.get(&((rel / 4) as u32)).copied().unwrap_or(0);
            entry.to_le_bytes()[(rel % 4) as usize]
        } else {
            0
        };
    }
}

fn write_obj(shared: &Shared, req: &Req, payload: &[u8]) -> Rsp {
    let (oid, offset) = obj_args(req);
    if is_inode(oid) {
        return write_inode(shared, vid_of(oid), offset, payload);
    }
    if offset + payload.len() as u64 > object_len(shared, oid) {
        return answer(result::INVALID_PARMS);
    }
    match open_object(shared, oid, true) {
        Ok(f) => answer(if f.write_all_at(payload, offset).is_ok() { result::SUCCESS } else { result::EIO }),
        Err(code) => answer(code),
    }
}

/// A write into an inode: header bytes are stored; `data_vdi_id` entries (whole ones only)
/// update the map, and an entry of the VDI's own vid set to 0 drops its object, as the
/// gateway's reference counting does. Generation references are the server's: refused.
fn write_inode(shared: &Shared, vid: u32, offset: u64, payload: &[u8]) -> Rsp {
    let mut st = shared.lock();
    let Some(vdi) = st.vdis.get_mut(&vid) else { return answer(result::NO_OBJ) };
    let end = offset + payload.len() as u64;
    let map_end = INODE_HEADER as u64 + 4 * MAX_OBJS;
    if end > map_end {
        return answer(result::INVALID_PARMS);
    }
    let header_part = (end.min(INODE_HEADER as u64)).saturating_sub(offset) as usize;
    if header_part > 0 {
        vdi.header[offset as usize..offset as usize + header_part].copy_from_slice(&payload[..header_part]);
    }
    let map_bytes = &payload[header_part..];
    if map_bytes.is_empty() {
        return answer(result::SUCCESS);
    }
    let map_start = offset.max(INODE_HEADER as u64) - INODE_HEADER as u64;
    if !map_start.is_multiple_of(4) || !map_bytes.len().is_multiple_of(4) {
        return answer(result::INVALID_PARMS);
    }
    let mut dropped = Vec::new();
    for (i, e) in map_bytes.chunks_exact(4).enumerate() {
        let idx = (map_start / 4) as u32 + i as u32;
        let new = u32::from_le_bytes(e.try_into().unwrap());
        let old = if new == 0 { vdi.map.remove(&idx) } else { vdi.map.insert(idx, new) };
        if let Some(old) = old.filter(|&o| o != new && o == vid) {
            dropped.push(((u64::from(old)) << 32) | u64::from(idx));
        }
    }
    drop(st);
    for oid in dropped {
        let _ = std::fs::remove_file(shared.object_path(oid));
    }
    answer(result::SUCCESS)
}

fn remove_obj(shared: &Shared, req: &Req) -> Rsp {
    let (oid, _) = obj_args(req);
    if is_inode(oid) {
        return answer(result::INVALID_PARMS);
    }
    match std::fs::remove_file(shared.object_path(oid)) {
        Ok(()) => answer(result::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => answer(result::NO_OBJ),
        Err(_) => answer(result::EIO),
    }
}

#[cfg(test)]
mod tests {
    //! The server against the reference's own examples, through raw bytes built here from
    //! the reference's tables (not with the store's codec).

    use super::*;

    /// A raw client: one request, its answer's header and data.
    struct Raw(TcpStream, u32);

    impl Raw {
        fn new(s: &TestServer) -> Raw {
            Raw(TcpStream::connect(s.addr).unwrap(), 100)
        }

        /// Sends `opcode` with `fields` at their offsets and `payload` (WRITE when not
        /// empty, else `want` is the data length).
        fn call(&mut self, opcode: u8, fields: &[(usize, &[u8])], payload: &[u8], want: u32) -> ([u8; 48], Vec<u8>) {
            self.1 += 1;
            let mut h = [0u8; 48];
            h[0] = 2;
            h[1] = opcode;
            if !payload.is_empty() {
                h[2] = 1;
            }
            h[8..12].copy_from_slice(&self.1.to_le_bytes());
            let len = if payload.is_empty() { want } else { payload.len() as u32 };
            h[12..16].copy_from_slice(&len.to_le_bytes());
            for (at, b) in fields {
                h[*at..*at + b.len()].copy_from_slice(b);
            }
            self.0.write_all(&h).unwrap();
            self.0.write_all(payload).unwrap();
            let mut r = [0u8; 48];
            self.0.read_exact(&mut r).unwrap();
            assert_eq!(u32::from_le_bytes(r[8..12].try_into().unwrap()), self.1, "the id is echoed");
            assert_eq!(r[1], opcode, "the opcode is echoed");
            let mut data = vec![0u8; u32::from_le_bytes(r[12..16].try_into().unwrap()) as usize];
            self.0.read_exact(&mut data).unwrap();
            (r, data)
        }

        fn result(r: &[u8; 48]) -> u32 {
            u32::from_le_bytes(r[16..20].try_into().unwrap())
        }

        fn vid(r: &[u8; 48]) -> u32 {
            u32::from_le_bytes(r[24..28].try_into().unwrap())
        }

        fn name(name: &str, len: usize) -> Vec<u8> {
            let mut p = vec![0u8; len];
            p[..name.len()].copy_from_slice(name.as_bytes());
            p
        }

        fn new_vdi(&mut self, name: &str, size: u64) -> (u32, u32) {
            let (r, _) = self.call(0x11, &[(16, &size.to_le_bytes())], &Raw::name(name, 256), 0);
            (Raw::result(&r), Raw::vid(&r))
        }

        fn get_info(&mut self, name: &str) -> (u32, u32) {
            let (r, _) = self.call(0x14, &[], &Raw::name(name, 256), 0);
            (Raw::result(&r), Raw::vid(&r))
        }

        fn del(&mut self, name: &str) -> u32 {
            Raw::result(&self.call(0x17, &[], &Raw::name(name, 512), 0).0)
        }

        fn obj(&mut self, opcode: u8, oid: u64, offset: u32, payload: &[u8], want: u32) -> (u32, Vec<u8>) {
            let (r, d) = self.call(opcode, &[(16, &oid.to_le_bytes()), (40, &offset.to_le_bytes())], payload, want);
            (Raw::result(&r), d)
        }
    }

    #[test]
    fn vids_are_fnv1a_of_the_name_as_the_reference_checked_live() {
        assert_eq!(fnv1a_vid(b"test"), 0x7c2b25);
        assert_eq!(fnv1a_vid(b"pyvdi"), 0x90b713);
        let s = start();
        let mut c = Raw::new(&s);
        assert_eq!(c.new_vdi("test", 1 << 30), (result::SUCCESS, 0x7c2b25));
        assert_eq!(c.new_vdi("pyvdi", 1 << 30), (result::SUCCESS, 0x90b713));
        assert_eq!(c.new_vdi("test", 1 << 30).0, result::VDI_EXIST);
        assert_eq!(c.get_info("test"), (result::SUCCESS, 0x7c2b25));
        assert_eq!(c.get_info("nope").0, result::NO_VDI);
        // Deleted vids stay used: "test" again gets 0x7c2b26.
        assert_eq!(c.del("test"), result::SUCCESS);
        assert_eq!(c.get_info("test").0, result::NO_VDI);
        assert_eq!(c.new_vdi("test", 1 << 30), (result::SUCCESS, 0x7c2b26));
        assert_eq!(c.get_info("test"), (result::SUCCESS, 0x7c2b26));
        let tomb = s.vdis().into_iter().find(|v| v.vid == 0x7c2b25).unwrap();
        assert_eq!((tomb.name.as_str(), tomb.size), ("", 0), "the tombstone stays");
    }

    #[test]
    fn framing_follows_the_reference() {
        let s = start();
        let mut c = Raw::new(&s);
        // NEW_VDI wants exactly 256 name bytes.
        let (r, _) = c.call(0x11, &[], &[b't'; 255], 0);
        assert_eq!(Raw::result(&r), result::INVALID_PARMS);
        let (r, _) = c.call(0x11, &[], &Raw::name("t", 512), 0);
        assert_eq!(Raw::result(&r), result::INVALID_PARMS);
        // Protocol versions above 2 get VER_MISMATCH.
        let mut h = [0u8; 48];
        h[0] = 3;
        h[1] = 0x18;
        c.0.write_all(&h).unwrap();
        let mut r = [0u8; 48];
        c.0.read_exact(&mut r).unwrap();
        assert_eq!(Raw::result(&r), result::VER_MISMATCH);
        // GET_CLUSTER_DEFAULT: copies, policy, shift at 20/21/22.
        let (r, d) = c.call(0x18, &[], &[], 0);
        assert_eq!((Raw::result(&r), r[20], r[21], r[22], d.len()), (0, 1, 0, 22, 0));
        // NEW_VDI answers the vid at 24 and the shift at 33; the inode header holds them.
        let (r, _) = c.call(0x11, &[(16, &(8u64 << 20).to_le_bytes()), (31, &[20])], &Raw::name("small", 256), 0);
        let vid = Raw::vid(&r);
        assert_eq!((Raw::result(&r), r[33]), (0, 20));
        let (code, inode) = c.obj(0x02, (1 << 63) | (u64::from(vid) << 32), 0, &[], 4664);
        assert_eq!((code, inode.len()), (0, 4664));
        assert_eq!(&inode[..6], b"small\0");
        assert_eq!(u64::from_le_bytes(inode[536..544].try_into().unwrap()), 8 << 20);
        assert_eq!((inode[555], u32::from_le_bytes(inode[560..564].try_into().unwrap())), (20, vid));
        // READ_VDIS: 2 MiB exactly, with the vid's bit set.
        let (r, bits) = c.call(0x15, &[], &[], 1 << 21);
        assert_eq!((Raw::result(&r), bits.len()), (0, 1 << 21));
        assert_ne!(bits[(vid / 8) as usize] & (1 << (vid % 8)), 0);
        assert_eq!(Raw::result(&c.call(0x15, &[], &[], 4096).0), result::INVALID_PARMS);
    }

    #[test]
    fn unwritten_objects_are_no_obj_and_written_ones_read_back_with_holes_as_zeros() {
        let s = start();
        let mut c = Raw::new(&s);
        let (_, vid) = c.new_vdi("data", 64 << 20);
        let oid = |idx: u64| (u64::from(vid) << 32) | idx;
        assert_eq!(c.obj(0x02, oid(0), 0, &[], 512).0, result::NO_OBJ);
        assert_eq!(c.obj(0x03, oid(0), 0, b"x", 0).0, result::NO_OBJ, "WRITE_OBJ needs the object");
        assert_eq!(c.obj(0x01, oid(1), 100, b"hello", 0).0, result::SUCCESS);
        let (code, d) = c.obj(0x02, oid(1), 98, &[], 9);
        assert_eq!((code, d.as_slice()), (0, &b"\0\0hello\0\0"[..]));
        assert_eq!(c.obj(0x03, oid(1), 4 << 20, b"x", 0).0, result::INVALID_PARMS, "past the object's end");
        assert_eq!(s.objects(), [(vid, 1)]);
        assert_eq!(c.obj(0x04, oid(1), 0, &[], 0).0, result::SUCCESS);
        assert_eq!(c.obj(0x04, oid(1), 0, &[], 0).0, result::NO_OBJ);
    }

    #[test]
    fn a_bare_del_vdi_succeeds_and_deletes_nothing_while_zeroing_first_deletes_everything() {
        let s = start();
        let mut c = Raw::new(&s);
        let (_, vid) = c.new_vdi("img", 64 << 20);
        let inode = (1u64 << 63) | (u64::from(vid) << 32);
        for idx in [0u32, 2] {
            assert_eq!(c.obj(0x01, (u64::from(vid) << 32) | u64::from(idx), 0, b"data", 0).0, 0);
            assert_eq!(c.obj(0x03, inode, 4664 + 4 * idx, &vid.to_le_bytes(), 0).0, 0);
        }
        let (_, map) = c.obj(0x02, inode, 4664, &[], 12);
        assert_eq!(map, [vid.to_le_bytes(), [0; 4], vid.to_le_bytes()].concat());

        // Bare: SUCCESS, yet the VDI is still found and its objects stay.
        assert_eq!(c.del("img"), result::SUCCESS);
        assert_eq!(c.get_info("img"), (result::SUCCESS, vid));
        assert_eq!(s.objects().len(), 2);
        assert!(s.vdis()[0].hidden);
        assert_eq!(s.leftovers().len(), 3, "{:?}", s.leftovers());

        // Zero the map (one batch), then DEL_VDI: gone.
        assert_eq!(c.obj(0x03, inode, 4664, &[0; 12], 0).0, result::SUCCESS);
        assert_eq!(s.objects(), []);
        assert_eq!(c.del("img"), result::SUCCESS);
        assert_eq!(c.get_info("img").0, result::NO_VDI);
        assert_eq!(s.leftovers(), Vec::<String>::new());
        assert_eq!(c.del("img"), result::NO_VDI);
    }
}
