//! The size a HEIF declares, read from its boxes without decoding anything: the `ispe` (image spatial
//! extents) properties in `meta/iprp/ipco`. A grid image (how iPhones store photos, 512-px tiles) has an
//! `ispe` for the whole grid and one for each tile size; the largest is the image's size. Used to refuse an
//! original whose decode would not fit the limits before libheif is asked to decode it whole.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

/// A `meta` box larger than this is not read (an iPhone's is a few kilobytes); the size is then unknown.
const MAX_META: u64 = 4 * 1024 * 1024;

/// Top-level boxes looked at before giving up (a HEIF has `ftyp`, `meta` and `mdat`, maybe a few more).
const MAX_TOP_BOXES: usize = 64;

/// The largest `ispe` of the file's `meta` box, or `None` when the file has none this reader finds.
pub(super) fn declared_size(path: &Path) -> std::io::Result<Option<(u32, u32)>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut offset = 0u64;
    for _ in 0..MAX_TOP_BOXES {
        if offset.saturating_add(8) > len {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header[..8])?;
        let mut size = u64::from(be32(&header[0..4]));
        let is_meta = &header[4..8] == b"meta";
        let mut header_len = 8;
        if size == 1 {
            if offset.saturating_add(16) > len {
                return Ok(None);
            }
            file.read_exact(&mut header[8..16])?;
            size = u64::from_be_bytes(header[8..16].try_into().unwrap_or([0; 8]));
            header_len = 16;
        } else if size == 0 {
            size = len - offset;
        }
        if size < header_len || offset.saturating_add(size) > len {
            return Ok(None);
        }
        if is_meta {
            let body_len = size - header_len;
            if body_len > MAX_META {
                return Ok(None);
            }
            let mut body = vec![0u8; usize::try_from(body_len).unwrap_or(0)];
            file.read_exact(&mut body)?;
            // `meta` is a full box: version and flags come first.
            return Ok(body.get(4..).and_then(largest_ispe_in_meta));
        }
        offset += size;
    }
    Ok(None)
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes.try_into().unwrap_or([0; 4]))
}

/// The child boxes of `data`, as (type, body); stops at the first malformed one.
fn children(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 8 {
            return None;
        }
        let size = usize::try_from(be32(&rest[0..4])).ok()?;
        // 64-bit and to-the-end sizes do not occur inside `meta` of the files this reads.
        if size < 8 || size > rest.len() {
            return None;
        }
        let (item, tail) = rest.split_at(size);
        rest = tail;
        Some((&item[4..8], &item[8..]))
    })
}

fn largest_ispe_in_meta(meta: &[u8]) -> Option<(u32, u32)> {
    let (_, iprp) = children(meta).find(|(kind, _)| *kind == b"iprp")?;
    let (_, ipco) = children(iprp).find(|(kind, _)| *kind == b"ipco")?;
    children(ipco)
        .filter(|(kind, body)| *kind == b"ispe" && body.len() >= 12)
        .map(|(_, body)| (be32(&body[4..8]), be32(&body[8..12])))
        .max_by_key(|(w, h)| u64::from(*w) * u64::from(*h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(body.len() + 8).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn ispe(width: u32, height: u32) -> Vec<u8> {
        let mut body = vec![0u8; 4];
        body.extend_from_slice(&width.to_be_bytes());
        body.extend_from_slice(&height.to_be_bytes());
        boxed(b"ispe", &body)
    }

    #[test]
    fn the_largest_ispe_of_meta_is_the_size() {
        let ipco = [ispe(512, 512), ispe(4032, 3024), ispe(320, 240)].concat();
        let iprp = boxed(b"iprp", &boxed(b"ipco", &ipco));
        let mut meta_body = vec![0u8; 4];
        meta_body.extend(boxed(b"hdlr", b"pictxxxx"));
        meta_body.extend(iprp);
        let file = [
            boxed(b"ftyp", b"heic\0\0\0\0mif1heic"),
            boxed(b"meta", &meta_body),
            boxed(b"mdat", &[7; 100]),
        ]
        .concat();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.heic");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(declared_size(&path).unwrap(), Some((4032, 3024)));

        // Cut inside `meta`, or no `meta` at all: unknown, never an error or a panic.
        std::fs::write(&path, &file[..40]).unwrap();
        assert_eq!(declared_size(&path).unwrap(), None);
        std::fs::write(&path, boxed(b"ftyp", b"heic")).unwrap();
        assert_eq!(declared_size(&path).unwrap(), None);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(declared_size(&path).unwrap(), None);
    }
}
