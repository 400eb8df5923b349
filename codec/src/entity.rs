//! Entity types and names (`client.admin`, `osd.3`, `mon.a`).
//!
//! Ceph identifies every endpoint by a type (`CEPH_ENTITY_TYPE_*`) and either an id string
//! (`EntityName`, used by cephx and keyrings) or a number (`entity_name_t`, the `gid` sent in
//! CLIENT_IDENT/SERVER_IDENT). The type values double as cephx service ids.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::encoding::{DecodeError, Decoder, Encode};

/// `CEPH_ENTITY_TYPE_*` from Ceph's `include/msgr.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EntityType {
    /// Monitor (`mon`).
    Mon = 0x01,
    /// Metadata server (`mds`).
    Mds = 0x02,
    /// Object storage daemon (`osd`).
    Osd = 0x04,
    /// Client (`client`).
    Client = 0x08,
    /// Manager (`mgr`).
    Mgr = 0x10,
    /// The cephx auth service id (only meaningful inside cephx).
    Auth = 0x20,
    /// Wildcard.
    Any = 0xFF,
}

impl EntityType {
    /// Maps a wire value to a type.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0x01 => Self::Mon,
            0x02 => Self::Mds,
            0x04 => Self::Osd,
            0x08 => Self::Client,
            0x10 => Self::Mgr,
            0x20 => Self::Auth,
            0xFF => Self::Any,
            _ => return None,
        })
    }

    /// Decodes a type from a `u32` field (EntityName encodes the type as `u32`).
    pub fn from_u32(v: u32) -> Option<Self> {
        u8::try_from(v).ok().and_then(Self::from_u8)
    }

    /// Ceph's name for the type, as used in `type.id`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mon => "mon",
            Self::Mds => "mds",
            Self::Osd => "osd",
            Self::Client => "client",
            Self::Mgr => "mgr",
            Self::Auth => "auth",
            Self::Any => "any",
        }
    }

    /// Decodes a `u8` entity type (HELLO) with a typed error.
    pub fn decode_u8(d: &mut Decoder<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let v = d.u8(what)?;
        Self::from_u8(v).ok_or(DecodeError::InvalidValue {
            what,
            value: u64::from(v),
        })
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntityType {
    type Err = EntityNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "mon" => Self::Mon,
            "mds" => Self::Mds,
            "osd" => Self::Osd,
            "client" => Self::Client,
            "mgr" => Self::Mgr,
            "auth" => Self::Auth,
            _ => return Err(EntityNameError::UnknownType(s.to_owned())),
        })
    }
}

/// Why an entity name string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EntityNameError {
    /// No `.` between type and id.
    #[error("entity name {0:?} has no '.' (expected TYPE.ID, e.g. client.admin)")]
    MissingDot(String),
    /// The type part is not one of Ceph's entity types.
    #[error("unknown entity type {0:?} (expected mon, mds, osd, client or mgr)")]
    UnknownType(String),
}

/// `EntityName`: a type plus an id string, e.g. `client.admin` (cephx, keyrings).
///
/// Wire form: `u32 type` + `string id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityName {
    /// The entity's type.
    pub ty: EntityType,
    /// The id after the dot (`admin` in `client.admin`).
    pub id: String,
}

impl EntityName {
    /// Builds a name from its parts.
    pub fn new(ty: EntityType, id: impl Into<String>) -> Self {
        Self { ty, id: id.into() }
    }

    /// Appends the wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(u32::from(self.ty as u8));
        out.put_blob(self.id.as_bytes());
    }

    /// Reads the wire form.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let t = d.u32("entity name type")?;
        let ty = EntityType::from_u32(t).ok_or(DecodeError::InvalidValue {
            what: "entity name type",
            value: u64::from(t),
        })?;
        let id = d.string("entity name id")?;
        Ok(Self { ty, id })
    }

    /// The numeric part of the id, if it is a number (`osd.3` → 3): Ceph's `gid` for daemons.
    pub fn num(&self) -> Option<i64> {
        self.id.parse().ok()
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.ty, self.id)
    }
}

impl FromStr for EntityName {
    type Err = EntityNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (t, id) = s
            .split_once('.')
            .ok_or_else(|| EntityNameError::MissingDot(s.to_owned()))?;
        Ok(Self {
            ty: t.parse()?,
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_admin_wire_form() {
        let n: EntityName = "client.admin".parse().unwrap();
        let mut b = Vec::new();
        n.encode(&mut b);
        assert_eq!(b, [8, 0, 0, 0, 5, 0, 0, 0, b'a', b'd', b'm', b'i', b'n']);
        let mut d = Decoder::new(&b);
        assert_eq!(EntityName::decode(&mut d).unwrap(), n);
        d.finish("name").unwrap();
        assert_eq!(n.to_string(), "client.admin");
    }

    /// `CEPH_ENTITY_TYPE_*` values and names; `any` (0xff) has no parseable name, as in
    /// Ceph's `str_to_ceph_entity_type`.
    #[test]
    fn type_values_and_names() {
        use EntityType::*;
        for (v, t, name) in [
            (0x01, Mon, "mon"),
            (0x02, Mds, "mds"),
            (0x04, Osd, "osd"),
            (0x08, Client, "client"),
            (0x10, Mgr, "mgr"),
            (0x20, Auth, "auth"),
        ] {
            assert_eq!(EntityType::from_u8(v), Some(t));
            assert_eq!(EntityType::from_u32(u32::from(v)), Some(t));
            assert_eq!((t.as_str(), t.to_string()), (name, name.to_owned()));
            assert_eq!(name.parse::<EntityType>(), Ok(t));
        }
        assert_eq!(EntityType::from_u8(0xFF), Some(Any));
        assert_eq!(
            "any".parse::<EntityType>(),
            Err(EntityNameError::UnknownType("any".to_owned()))
        );
        for v in [0u8, 3, 0x40, 0xFE] {
            assert_eq!(EntityType::from_u8(v), None, "{v:#x}");
        }
        assert_eq!(EntityType::from_u32(0x101), None);
    }

    #[test]
    fn bad_names() {
        assert!(matches!(
            "admin".parse::<EntityName>(),
            Err(EntityNameError::MissingDot(_))
        ));
        assert!(matches!(
            "foo.1".parse::<EntityName>(),
            Err(EntityNameError::UnknownType(_))
        ));
        assert_eq!("osd.3".parse::<EntityName>().unwrap().num(), Some(3));
    }
}
