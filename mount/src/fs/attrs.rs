//! Extended attributes of entries.

use crate::error::{Error, Result};
use crate::fs::Fs;

/// How `setxattr` treats an attribute that exists (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetMode {
    /// Fail with EEXIST when the attribute exists (`XATTR_CREATE`).
    pub create_only: bool,
    /// Fail with ENODATA when it does not (`XATTR_REPLACE`).
    pub replace_only: bool,
}

impl Fs {
    /// The value of attribute `name` of an entry.
    pub async fn getxattr(&self, _ino: u64, name: &str) -> Result<Vec<u8>> {
        Err(Error::NoAttribute {
            name: name.to_owned(),
        })
    }

    /// The names of an entry's attributes.
    pub async fn listxattr(&self, _ino: u64) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Sets attribute `name` of an entry.
    pub async fn setxattr(&self, _ino: u64, _name: &str, _value: &[u8], _mode: SetMode) -> Result<()> {
        Err(Error::Unsupported {
            what: "extended attributes",
        })
    }

    /// Removes attribute `name` of an entry.
    pub async fn removexattr(&self, _ino: u64, name: &str) -> Result<()> {
        Err(Error::NoAttribute {
            name: name.to_owned(),
        })
    }
}
