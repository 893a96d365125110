//! Extended attributes over FUSE: the core's (stored with the object, see `fs/attrs.rs`) and the mount's
//! own, which are answered here and never stored: `user.iphoto.cache_dir` (where `flush` and `status` find
//! the mount's state) and the pin attributes (`user.iphoto.pin`, see `fs/pin.rs`).

use std::ffi::OsStr;

use fuser::{ReplyEmpty, ReplyXattr, Request};

use super::{CACHE_DIR_XATTR, FuseFs, errno, name_of, reply_empty};
use crate::error::Error;
use crate::fs::pin::PIN_XATTR;

/// Answers a get or list: the size when the caller asks for it (`size == 0`), the bytes when they fit,
/// ERANGE when they do not.
fn reply_bytes(reply: ReplyXattr, size: u32, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    if size == 0 {
        reply.size(len);
    } else if len > size {
        reply.error(fuser::Errno::from_i32(libc::ERANGE));
    } else {
        reply.data(bytes);
    }
}

pub(super) fn getxattr(front: &FuseFs, req: &Request, ino: u64, name: &OsStr, size: u32, reply: ReplyXattr) {
    let name = match name_of(name) {
        Ok(name) => name,
        Err(_) => return reply.error(fuser::Errno::from_i32(libc::ENODATA)),
    };
    if name == CACHE_DIR_XATTR {
        let path = front.cache_dir.as_os_str().as_encoded_bytes().to_vec();
        return reply_bytes(reply, size, &path);
    }
    if name == PIN_XATTR {
        return match front.fs.pin_state(ino) {
            Ok(state) => reply_bytes(reply, size, state.as_bytes()),
            Err(e) => reply.error(errno(&e)),
        };
    }
    let fs = front.fs.clone();
    front.spawn(req, "getxattr", async move {
        match fs.getxattr(ino, &name).await {
            Ok(value) => reply_bytes(reply, size, &value),
            Err(e) => reply.error(errno(&e)),
        }
    });
}

pub(super) fn listxattr(front: &FuseFs, req: &Request, ino: u64, size: u32, reply: ReplyXattr) {
    let fs = front.fs.clone();
    front.spawn(req, "listxattr", async move {
        match fs.listxattr(ino).await {
            Ok(names) => {
                let mut bytes = Vec::new();
                for name in names {
                    bytes.extend_from_slice(name.as_bytes());
                    bytes.push(0);
                }
                reply_bytes(reply, size, &bytes);
            }
            Err(e) => reply.error(errno(&e)),
        }
    });
}

pub(super) fn setxattr(
    front: &FuseFs,
    req: &Request,
    ino: u64,
    name: &OsStr,
    value: &[u8],
    flags: i32,
    reply: ReplyEmpty,
) {
    let name = match name_of(name) {
        Ok(name) => name,
        Err(e) => return reply.error(errno(&e)),
    };
    if name == CACHE_DIR_XATTR {
        return reply.error(errno(&Error::ReadOnlyAttribute { name }));
    }
    if name == PIN_XATTR {
        let fs = front.fs.clone();
        let pin = value != b"0";
        return front.spawn(req, "pin", async move {
            let result = if pin {
                fs.pin(ino).await
            } else {
                fs.unpin(ino).await
            };
            if let Err(e) = &result {
                tracing::warn!(error = %e, "pin");
            }
            reply_empty(reply, result);
        });
    }
    let fs = front.fs.clone();
    let value = value.to_vec();
    let mode = crate::fs::SetMode {
        create_only: flags & libc::XATTR_CREATE != 0,
        replace_only: flags & libc::XATTR_REPLACE != 0,
    };
    front.spawn(req, "setxattr", async move {
        reply_empty(reply, fs.setxattr(ino, &name, &value, mode).await);
    });
}

pub(super) fn removexattr(front: &FuseFs, req: &Request, ino: u64, name: &OsStr, reply: ReplyEmpty) {
    let name = match name_of(name) {
        Ok(name) => name,
        Err(e) => return reply.error(errno(&e)),
    };
    let fs = front.fs.clone();
    front.spawn(req, "removexattr", async move {
        reply_empty(reply, fs.removexattr(ino, &name).await);
    });
}
