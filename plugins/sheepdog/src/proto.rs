//! Sheepdog's wire format, as a client needs it: the 48-byte request and response headers,
//! opcodes, flags, result codes, object ids and the inode's field offsets.
//!
//! Every number here comes from `/work/shared/reference/sheepdog-protocol.md` (§4), which
//! was checked against real sheep daemons; the tests below hold the reference's own
//! examples. Fields travel in the host's byte order, which on every platform Sheepdog runs
//! on is little-endian, so this module writes little-endian explicitly. No IO happens here:
//! `client.rs` moves the bytes.

/// The size of a request header and of a response header.
pub const HEADER_LEN: usize = 48;

/// `SD_PROTO_VER`: the protocol version every public request carries.
pub const PROTO_VER: u8 = 0x02;

/// Sheepdog's default port (`SD_LISTEN_PORT`).
pub const DEFAULT_PORT: u16 = 7000;

/// The public opcodes a client sends (§4.3).
pub mod opcode {
    /// Create an object (sparse, at full size) and write a range of it.
    pub const CREATE_AND_WRITE_OBJ: u8 = 0x01;
    /// Read a range of an object.
    pub const READ_OBJ: u8 = 0x02;
    /// Write a range of an existing object.
    pub const WRITE_OBJ: u8 = 0x03;
    /// Remove an object.
    pub const REMOVE_OBJ: u8 = 0x04;
    /// Create a VDI: 256-byte name, vdi.* fields.
    pub const NEW_VDI: u8 = 0x11;
    /// Look up (and, on clusters formatted with locking, lock) a VDI by name.
    pub const LOCK_VDI: u8 = 0x12;
    /// Release a VDI locked with `LOCK_VDI`.
    pub const RELEASE_VDI: u8 = 0x13;
    /// Look up a VDI by name (and snapshot id or tag), ordered through the cluster.
    pub const GET_VDI_INFO: u8 = 0x14;
    /// The 2 MiB bitmap of vids in use.
    pub const READ_VDIS: u8 = 0x15;
    /// Delete a VDI by name (effective only once its block map is zeroed, §4.7).
    pub const DEL_VDI: u8 = 0x17;
    /// The cluster's default copies, copy policy and block size shift.
    pub const GET_CLUSTER_DEFAULT: u8 = 0x18;
}

/// Request flag: `data_length` bytes of payload follow the header.
pub const FLAG_WRITE: u16 = 0x01;

/// A response's result code (§4.2). An integer newtype, so that a code this client does
/// not name still shows as itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultCode(pub u32);

impl ResultCode {
    /// Success.
    pub const SUCCESS: Self = Self(0x00);
    /// An unknown error.
    pub const UNKNOWN: Self = Self(0x01);
    /// No such object (also: a read of a block never written).
    pub const NO_OBJ: Self = Self(0x02);
    /// An IO error in the cluster.
    pub const EIO: Self = Self(0x03);
    /// A VDI of that name exists.
    pub const VDI_EXIST: Self = Self(0x04);
    /// The request is malformed (a name not exactly 256 bytes, say).
    pub const INVALID_PARMS: Self = Self(0x05);
    /// A system error in the sheep.
    pub const SYSTEM_ERROR: Self = Self(0x06);
    /// The VDI is locked by another client.
    pub const VDI_LOCKED: Self = Self(0x07);
    /// No VDI of that name.
    pub const NO_VDI: Self = Self(0x08);
    /// The base VDI of a clone does not exist.
    pub const NO_BASE_VDI: Self = Self(0x09);
    /// Reading the VDI failed.
    pub const VDI_READ: Self = Self(0x0A);
    /// Writing the VDI failed.
    pub const VDI_WRITE: Self = Self(0x0B);
    /// Reading the base VDI failed.
    pub const BASE_VDI_READ: Self = Self(0x0C);
    /// Writing the base VDI failed.
    pub const BASE_VDI_WRITE: Self = Self(0x0D);
    /// No snapshot of that tag.
    pub const NO_TAG: Self = Self(0x0E);
    /// The sheep is starting up.
    pub const STARTUP: Self = Self(0x0F);
    /// The VDI is not locked.
    pub const VDI_NOT_LOCKED: Self = Self(0x10);
    /// The sheep is shutting down.
    pub const SHUTDOWN: Self = Self(0x11);
    /// The sheep ran out of memory.
    pub const NO_MEM: Self = Self(0x12);
    /// No vid is free.
    pub const FULL_VDI: Self = Self(0x13);
    /// The protocol version is not one the sheep speaks.
    pub const VER_MISMATCH: Self = Self(0x14);
    /// The cluster has no space left.
    pub const NO_SPACE: Self = Self(0x15);
    /// The cluster was never formatted (`dog cluster format`).
    pub const WAIT_FOR_FORMAT: Self = Self(0x16);
    /// The sheep waits for other nodes to join.
    pub const WAIT_FOR_JOIN: Self = Self(0x17);
    /// The sheep failed to join the cluster.
    pub const JOIN_FAILED: Self = Self(0x18);
    /// The cluster halted (too few nodes for its copies).
    pub const HALT: Self = Self(0x19);
    /// The object is read-only (a snapshot's).
    pub const READONLY: Self = Self(0x1A);
    /// The inode was invalidated (only with the TGT flag).
    pub const INODE_INVALIDATED: Self = Self(0x1D);

    /// Sheepdog's name for the code, or `None` for one the reference does not list.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 27] = [
            "SUCCESS",
            "UNKNOWN",
            "NO_OBJ",
            "EIO",
            "VDI_EXIST",
            "INVALID_PARMS",
            "SYSTEM_ERROR",
            "VDI_LOCKED",
            "NO_VDI",
            "NO_BASE_VDI",
            "VDI_READ",
            "VDI_WRITE",
            "BASE_VDI_READ",
            "BASE_VDI_WRITE",
            "NO_TAG",
            "STARTUP",
            "VDI_NOT_LOCKED",
            "SHUTDOWN",
            "NO_MEM",
            "FULL_VDI",
            "VER_MISMATCH",
            "NO_SPACE",
            "WAIT_FOR_FORMAT",
            "WAIT_FOR_JOIN",
            "JOIN_FAILED",
            "HALT",
            "READONLY",
        ];
        match self.0 {
            0x1D => Some("INODE_INVALIDATED"),
            n => NAMES.get(n as usize).copied(),
        }
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (0x{:02x})", self.0),
            None => write!(f, "result 0x{:02x}", self.0),
        }
    }
}

/// Object ids (§4.4): bits 0–31 the data index, 32–55 the vid, bit 63 marks an inode.
pub mod oid {
    /// The flag bit of an inode (VDI) object.
    pub const VDI_BIT: u64 = 1 << 63;

    /// The inode object of VDI `vid`.
    pub fn inode(vid: u32) -> u64 {
        VDI_BIT | (u64::from(vid) << 32)
    }

    /// Data object `idx` owned by `vid`.
    pub fn data(vid: u32, idx: u32) -> u64 {
        (u64::from(vid) << 32) | u64::from(idx)
    }
}

/// Vids are 24 bits.
pub const VID_MASK: u32 = 0x00ff_ffff;

/// The inode object's layout (§4.5).
pub mod inode {
    /// The NUL-padded name.
    pub const NAME: usize = 0;
    /// The length of the name field and of the tag field.
    pub const NAME_LEN: usize = 256;
    /// The snapshot tag.
    pub const TAG: usize = 256;
    /// Nonzero: this inode is a snapshot.
    pub const SNAP_CTIME: usize = 520;
    /// The VDI's size in bytes (u64).
    pub const VDI_SIZE: usize = 536;
    /// The object size is `1 << block_size_shift` (u8).
    pub const BLOCK_SIZE_SHIFT: usize = 555;
    /// The VDI's own vid (u32).
    pub const VDI_ID: usize = 560;
    /// The first `data_vdi_id` entry; also the header's length.
    pub const DATA_VDI_ID: usize = 4664;
    /// The number of `data_vdi_id` entries with store_policy 0.
    pub const MAX_DATA_OBJS: u64 = 1 << 20;
    /// The inode object's whole size: header, `data_vdi_id`, generation references.
    pub const OBJECT_LEN: usize = DATA_VDI_ID + 4 * (1 << 20) + 8 * (1 << 20);

    /// The offset of entry `idx` of `data_vdi_id`.
    pub fn entry(idx: u32) -> u32 {
        DATA_VDI_ID as u32 + 4 * idx
    }
}

/// Sheepdog's default object size: `1 << 22` = 4 MiB.
pub const DEFAULT_BLOCK_SIZE_SHIFT: u8 = 22;

/// The op-specific part of a request header (bytes 16–47).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Args {
    /// No fields (RELEASE_VDI uses [`Args::Vdi`]; GET_CLUSTER_DEFAULT and READ_VDIS none).
    None,
    /// READ/WRITE/CREATE_AND_WRITE/REMOVE of object `oid`, at `offset` inside it.
    Obj {
        /// The object.
        oid: u64,
        /// The byte offset inside the object.
        offset: u32,
    },
    /// NEW/LOCK/RELEASE/GET_VDI_INFO/DEL of a VDI.
    Vdi {
        /// NEW_VDI: the size in bytes.
        vdi_size: u64,
        /// The parent of a clone; RELEASE_VDI: the vid to release.
        base_vdi_id: u32,
        /// NEW_VDI: `1 << block_size_shift` is the object size; 0 is the cluster default.
        block_size_shift: u8,
        /// Lookups and deletes: the snapshot id, 0 for the current VDI.
        snapid: u32,
    },
}

/// A request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// One of [`opcode`].
    pub opcode: u8,
    /// [`FLAG_WRITE`] when a payload follows.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u32,
    /// The payload's length (with WRITE) or the bytes wanted (reads).
    pub data_length: u32,
    /// The op-specific fields.
    pub args: Args,
}

impl Request {
    /// The 48 bytes on the wire. Copies, copy policy and store policy are left 0: the
    /// cluster's defaults.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = PROTO_VER;
        h[1] = self.opcode;
        h[2..4].copy_from_slice(&self.flags.to_le_bytes());
        // Bytes 4..8, the epoch: the server fills it in for client requests.
        h[8..12].copy_from_slice(&self.id.to_le_bytes());
        h[12..16].copy_from_slice(&self.data_length.to_le_bytes());
        match self.args {
            Args::None => {}
            Args::Obj { oid, offset } => {
                h[16..24].copy_from_slice(&oid.to_le_bytes());
                h[40..44].copy_from_slice(&offset.to_le_bytes());
            }
            Args::Vdi { vdi_size, base_vdi_id, block_size_shift, snapid } => {
                h[16..24].copy_from_slice(&vdi_size.to_le_bytes());
                h[24..28].copy_from_slice(&base_vdi_id.to_le_bytes());
                h[31] = block_size_shift;
                h[32..36].copy_from_slice(&snapid.to_le_bytes());
            }
        }
        h
    }
}

/// A response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The request's opcode, echoed.
    pub opcode: u8,
    /// The request's id, echoed.
    pub id: u32,
    /// Exactly this many bytes follow the header.
    pub data_length: u32,
    /// The result.
    pub result: ResultCode,
    raw: [u8; HEADER_LEN],
}

impl Response {
    /// Reads a response header.
    pub fn decode(h: &[u8; HEADER_LEN]) -> Response {
        Response {
            opcode: h[1],
            id: u32_at(h, 8),
            data_length: u32_at(h, 12),
            result: ResultCode(u32_at(h, 16)),
            raw: *h,
        }
    }

    /// VDI ops: the vid (NEW_VDI, LOCK_VDI, GET_VDI_INFO, DEL_VDI).
    pub fn vdi_id(&self) -> u32 {
        u32_at(&self.raw, 24)
    }

    /// VDI ops: the VDI's block size shift (0 when the server does not say).
    pub fn vdi_block_size_shift(&self) -> u8 {
        self.raw[33]
    }

    /// GET_CLUSTER_DEFAULT: the cluster's block size shift.
    pub fn cluster_block_size_shift(&self) -> u8 {
        self.raw[22]
    }
}

/// The little-endian u32 at `at` in `b`.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes"))
}

/// The little-endian u64 at `at` in `b`.
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"))
}

/// A VDI name as NEW_VDI, GET_VDI_INFO and DEL_VDI carry it: NUL-padded to 256 bytes, or
/// to 512 with an (empty) snapshot tag after it. `None` when the name cannot be one: empty,
/// 256 bytes or more (the last byte stays NUL), or holding a NUL.
pub fn name_payload(name: &str, with_tag: bool) -> Option<Vec<u8>> {
    if name.is_empty() || name.len() >= inode::NAME_LEN || name.as_bytes().contains(&0) {
        return None;
    }
    let mut p = vec![0u8; if with_tag { 2 * inode::NAME_LEN } else { inode::NAME_LEN }];
    p[..name.len()].copy_from_slice(name.as_bytes());
    Some(p)
}

/// The fields of an inode header this client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeHeader {
    /// The name; empty for a deleted VDI's tombstone.
    pub name: String,
    /// The size in bytes.
    pub vdi_size: u64,
    /// The object size is `1 << block_size_shift`.
    pub block_size_shift: u8,
    /// The VDI's own vid.
    pub vdi_id: u32,
    /// Whether the inode is a snapshot's.
    pub is_snapshot: bool,
}

impl InodeHeader {
    /// Reads the header from the first [`inode::DATA_VDI_ID`] bytes of an inode object;
    /// `None` if `b` is shorter.
    pub fn parse(b: &[u8]) -> Option<InodeHeader> {
        if b.len() < inode::DATA_VDI_ID {
            return None;
        }
        let name = &b[inode::NAME..inode::NAME + inode::NAME_LEN];
        let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
        Some(InodeHeader {
            name: String::from_utf8_lossy(&name[..end]).into_owned(),
            vdi_size: u64_at(b, inode::VDI_SIZE),
            block_size_shift: b[inode::BLOCK_SIZE_SHIFT],
            vdi_id: u32_at(b, inode::VDI_ID),
            is_snapshot: u64_at(b, inode::SNAP_CTIME) != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_the_references() {
        // §4.4: vid 0x7c2b25 ("test") has the inode object 807c2b2500000000.
        assert_eq!(oid::inode(0x7c2b25), 0x807c_2b25_0000_0000);
        assert_eq!(oid::data(0x7c2b25, 3), 0x007c_2b25_0000_0003);
        assert_eq!(oid::data(0x90b713, 0xffff_ffff), 0x0090_b713_ffff_ffff);
    }

    #[test]
    fn the_inode_layout_is_the_references() {
        // §4.5: 12,587,576 bytes, a 4,664-byte header, the references at 4,198,968.
        assert_eq!(inode::OBJECT_LEN, 12_587_576);
        assert_eq!(inode::DATA_VDI_ID, 4664);
        assert_eq!(inode::DATA_VDI_ID + 4 * (1 << 20), 4_198_968);
        assert_eq!(inode::entry(0), 4664);
        assert_eq!(inode::entry(10), 4704);
    }

    #[test]
    fn a_new_vdi_request_is_laid_out_as_the_reference_says() {
        let r = Request {
            opcode: opcode::NEW_VDI,
            flags: FLAG_WRITE,
            id: 7,
            data_length: 256,
            args: Args::Vdi { vdi_size: 1 << 30, base_vdi_id: 0, block_size_shift: 22, snapid: 0 },
        };
        let h = r.encode();
        assert_eq!(h.len(), 48);
        assert_eq!(&h[0..4], &[0x02, 0x11, 0x01, 0x00]);
        assert_eq!(&h[4..8], &[0; 4], "the epoch is left to the server");
        assert_eq!(&h[8..16], &[7, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(&h[16..24], &(1u64 << 30).to_le_bytes());
        assert_eq!((h[28], h[29], h[30], h[31]), (0, 0, 0, 22), "copies, policies default; shift 22");
        assert_eq!(&h[32..48], &[0; 16]);
    }

    #[test]
    fn an_object_request_puts_oid_and_offset_where_the_reference_says() {
        let h = Request {
            opcode: opcode::WRITE_OBJ,
            flags: FLAG_WRITE,
            id: 1,
            data_length: 4,
            args: Args::Obj { oid: oid::inode(0x7c2b25), offset: inode::entry(2) },
        }
        .encode();
        assert_eq!(&h[16..24], &[0, 0, 0, 0, 0x25, 0x2b, 0x7c, 0x80]);
        assert_eq!(u32_at(&h, 40), 4672);
        assert_eq!(&h[24..40], &[0; 16], "no cow_oid, default copies");
    }

    #[test]
    fn responses_give_result_vid_and_shift() {
        let mut h = [0u8; HEADER_LEN];
        h[1] = opcode::NEW_VDI;
        h[8..12].copy_from_slice(&9u32.to_le_bytes());
        h[16] = 0x04;
        h[24..28].copy_from_slice(&0x7c2b26u32.to_le_bytes());
        h[33] = 22;
        let r = Response::decode(&h);
        assert_eq!((r.opcode, r.id, r.data_length), (opcode::NEW_VDI, 9, 0));
        assert_eq!(r.result, ResultCode::VDI_EXIST);
        assert_eq!((r.vdi_id(), r.vdi_block_size_shift()), (0x7c2b26, 22));
    }

    #[test]
    fn result_codes_have_the_references_names() {
        assert_eq!(ResultCode::NO_OBJ.to_string(), "NO_OBJ (0x02)");
        assert_eq!(ResultCode(0x14).name(), Some("VER_MISMATCH"));
        assert_eq!(ResultCode(0x1A).name(), Some("READONLY"));
        assert_eq!(ResultCode(0x1D).name(), Some("INODE_INVALIDATED"));
        assert_eq!(ResultCode(0x1B).to_string(), "result 0x1b");
    }

    #[test]
    fn names_are_nul_padded_and_bounded() {
        let p = name_payload("test", false).unwrap();
        assert_eq!(p.len(), 256);
        assert_eq!(&p[..5], b"test\0");
        assert_eq!(name_payload("test", true).unwrap().len(), 512);
        assert!(name_payload("", false).is_none());
        assert!(name_payload(&"x".repeat(256), false).is_none());
        assert!(name_payload(&"x".repeat(255), false).is_some());
        assert!(name_payload("a\0b", false).is_none());
    }

    #[test]
    fn an_inode_header_reads_back() {
        let mut b = vec![0u8; inode::DATA_VDI_ID];
        b[..4].copy_from_slice(b"test");
        b[inode::VDI_SIZE..inode::VDI_SIZE + 8].copy_from_slice(&(5u64 << 20).to_le_bytes());
        b[inode::BLOCK_SIZE_SHIFT] = 22;
        b[inode::VDI_ID..inode::VDI_ID + 4].copy_from_slice(&0x7c2b25u32.to_le_bytes());
        let h = InodeHeader::parse(&b).unwrap();
        assert_eq!(
            h,
            InodeHeader {
                name: "test".into(),
                vdi_size: 5 << 20,
                block_size_shift: 22,
                vdi_id: 0x7c2b25,
                is_snapshot: false
            }
        );
        assert!(InodeHeader::parse(&b[..100]).is_none());
    }
}
