//! Disk and container formats, and the rule that pairs the Amazon ones.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

macro_rules! format_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, [$($variant:ident = $text:literal),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $(#[doc = concat!("`", $text, "`")] $variant,)+
        }

        impl $name {
            /// Every accepted value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name clients send and see.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = crate::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    crate::Error::invalid($field, format!("{s:?} is not one of {}", all.join(", ")))
                })
            }
        }
    };
}

format_enum!(
    /// The format of the disk image inside the container.
    DiskFormat, "disk_format",
    [
        Raw = "raw", Vhd = "vhd", Vhdx = "vhdx", Vmdk = "vmdk", Vdi = "vdi", Iso = "iso", Ploop = "ploop",
        Qcow2 = "qcow2", Aki = "aki", Ari = "ari", Ami = "ami",
    ]
);

format_enum!(
    /// The container the disk image comes in (`bare` when there is none).
    ContainerFormat, "container_format",
    [
        Ovf = "ovf", Ova = "ova", Bare = "bare", Docker = "docker", Compressed = "compressed", Aki = "aki",
        Ari = "ari", Ami = "ami",
    ]
);

/// The Amazon formats (kernel, ramdisk, machine) name both the disk and the container:
/// if either side is `aki`, `ari` or `ami`, both must be that same value.
pub fn check_format_pair(disk: Option<DiskFormat>, container: Option<ContainerFormat>) -> Result<(), crate::Error> {
    let amazon = |s: &str| matches!(s, "aki" | "ari" | "ami");
    let d = disk.map(DiskFormat::as_str);
    let c = container.map(ContainerFormat::as_str);
    let either_amazon = d.is_some_and(amazon) || c.is_some_and(amazon);
    if either_amazon && d != c {
        return Err(crate::Error::invalid(
            "container_format",
            format!(
                "disk_format {} and container_format {} must be equal when either is aki, ari or ami",
                d.unwrap_or("(unset)"),
                c.unwrap_or("(unset)")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_every_value() {
        for d in DiskFormat::ALL {
            assert_eq!(d.as_str().parse::<DiskFormat>().unwrap(), *d);
        }
        assert_eq!(DiskFormat::ALL.len(), 11, "Glance's disk_formats");
        assert_eq!(ContainerFormat::ALL.len(), 8, "Glance's container_formats");
        let err = "floppy".parse::<DiskFormat>().unwrap_err().to_string();
        assert!(err.contains("disk_format") && err.contains("qcow2"), "{err}");
    }

    #[test]
    fn amazon_formats_pair() {
        use ContainerFormat as C;
        use DiskFormat as D;
        assert!(check_format_pair(Some(D::Aki), Some(C::Aki)).is_ok());
        assert!(check_format_pair(Some(D::Qcow2), Some(C::Bare)).is_ok());
        assert!(check_format_pair(Some(D::Raw), None).is_ok());
        assert!(check_format_pair(Some(D::Aki), Some(C::Ari)).is_err());
        assert!(check_format_pair(Some(D::Raw), Some(C::Ami)).is_err());
        assert!(check_format_pair(Some(D::Ami), None).is_err());
    }
}
