//! A SHA-256 whose state can be saved and restored: a resumable upload hashes its bytes as they arrive, over
//! many requests and possibly many server replicas, and checks the digest at completion without reading the
//! object back.
//!
//! `sha2` exposes its compression function (feature `compress`) but no way to export a hasher's state, so
//! the Merkle–Damgård framing (64-byte blocks, padding, bit length) is done here, on top of it.

use sha2::digest::generic_array::GenericArray;

use crate::digest::Sha256Digest;

/// The initial hash value of SHA-256 (FIPS 180-4, 5.3.3).
const INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A SHA-256 computation in progress: the chaining value after every whole 64-byte block fed, the bytes
/// fed in all, and the bytes of the block not yet whole. [`Sha256State::encode`] gives it as text to persist.
#[derive(Clone, PartialEq, Eq)]
pub struct Sha256State {
    state: [u32; 8],
    length: u64,
    pending: Vec<u8>,
}

impl std::fmt::Debug for Sha256State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sha256State({} bytes)", self.length)
    }
}

impl Default for Sha256State {
    fn default() -> Self {
        Self {
            state: INITIAL,
            length: 0,
            pending: Vec::with_capacity(64),
        }
    }
}

impl Sha256State {
    /// The state of nothing hashed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many bytes were fed.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Feeds bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.length += bytes.len() as u64;
        if !self.pending.is_empty() {
            let take = (64 - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < 64 {
                return;
            }
            let block = *GenericArray::from_slice(&self.pending);
            sha2::compress256(&mut self.state, &[block]);
            self.pending.clear();
        }
        let whole = bytes.len() / 64 * 64;
        if whole > 0 {
            let blocks: Vec<GenericArray<u8, _>> = bytes[..whole]
                .chunks_exact(64)
                .map(|b| *GenericArray::from_slice(b))
                .collect();
            sha2::compress256(&mut self.state, &blocks);
        }
        self.pending.extend_from_slice(&bytes[whole..]);
    }

    /// The digest of everything fed (the state itself is left as it was).
    pub fn digest(&self) -> Sha256Digest {
        let mut state = self.state;
        let mut last = self.pending.clone();
        last.push(0x80);
        while last.len() % 64 != 56 {
            last.push(0);
        }
        last.extend_from_slice(&(self.length.wrapping_mul(8)).to_be_bytes());
        let blocks: Vec<GenericArray<u8, _>> = last
            .chunks_exact(64)
            .map(|b| *GenericArray::from_slice(b))
            .collect();
        sha2::compress256(&mut state, &blocks);
        let mut out = [0u8; 32];
        for (word, bytes) in state.iter().zip(out.chunks_exact_mut(4)) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        Sha256Digest(out)
    }

    /// `<length>:<64 hex digits of the chaining value>:<hex of the pending bytes>`.
    pub fn encode(&self) -> String {
        let mut words = [0u8; 32];
        for (word, bytes) in self.state.iter().zip(words.chunks_exact_mut(4)) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        format!(
            "{}:{}:{}",
            self.length,
            hex::encode(words),
            hex::encode(&self.pending)
        )
    }

    /// Reads what [`Sha256State::encode`] wrote; `None` if it is not such a text (or is inconsistent).
    pub fn decode(text: &str) -> Option<Self> {
        let mut fields = text.split(':');
        let length: u64 = fields.next()?.parse().ok()?;
        let mut words = [0u8; 32];
        hex::decode_to_slice(fields.next()?, &mut words).ok()?;
        let pending = hex::decode(fields.next()?).ok()?;
        if fields.next().is_some() || pending.len() >= 64 || (length % 64) as usize != pending.len() {
            return None;
        }
        let mut state = [0u32; 8];
        for (word, bytes) in state.iter_mut().zip(words.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        Some(Self {
            state,
            length,
            pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Sha256State;
    use crate::digest::Sha256Digest;

    #[test]
    fn matches_sha256_at_every_length_and_split_and_survives_a_round_trip() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 128, 200, 300] {
            for split in [0, 1, len / 3, len / 2, len.saturating_sub(1), len] {
                let split = split.min(len);
                let mut state = Sha256State::new();
                state.update(&data[..split]);
                let mut state = Sha256State::decode(&state.encode()).expect("round trip");
                state.update(&data[split..len]);
                assert_eq!(state.length(), len as u64);
                assert_eq!(
                    state.digest(),
                    Sha256Digest::of(&data[..len]),
                    "len {len} split {split}"
                );
            }
        }
    }

    #[test]
    fn rejects_text_that_is_not_a_state() {
        for text in [
            "",
            "1:00:",
            "x:y:z",
            "3::aabbcc",
            &format!("2:{}:aa", "0".repeat(64)),
        ] {
            assert!(Sha256State::decode(text).is_none(), "{text}");
        }
    }
}
