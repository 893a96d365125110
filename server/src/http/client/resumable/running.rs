//! The resumable-upload appends running in this process (see `resumable.rs`).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

/// The appends running in this process, by upload id: a newer request for the same upload cancels the
/// older one's transfer instead of waiting for its connection to time out.
#[derive(Debug, Default)]
pub struct Running(Mutex<HashMap<String, (String, CancellationToken)>>);

impl Running {
    pub(super) fn start(&self, id: &str, holder: &str) -> CancellationToken {
        let token = CancellationToken::new();
        if let Ok(mut map) = self.0.lock() {
            map.insert(id.to_owned(), (holder.to_owned(), token.clone()));
        }
        token
    }

    pub(super) fn finish(&self, id: &str, holder: &str) {
        if let Ok(mut map) = self.0.lock()
            && map.get(id).is_some_and(|(h, _)| h == holder)
        {
            map.remove(id);
        }
    }

    pub(super) fn cancel(&self, id: &str) -> bool {
        let token = self
            .0
            .lock()
            .ok()
            .and_then(|map| map.get(id).map(|(_, t)| t.clone()));
        token.map(|t| t.cancel()).is_some()
    }
}
