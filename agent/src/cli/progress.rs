//! Progress bars for a person at a terminal: hashing (files), metadata (items) and uploads (bytes).

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::sync::{Phase, Progress};

/// indicatif bars, one per phase, created when the phase starts.
#[derive(Debug)]
pub struct TerminalProgress {
    multi: MultiProgress,
    hashing: ProgressBar,
    metadata: ProgressBar,
    uploads: ProgressBar,
}

impl TerminalProgress {
    /// Hidden bars until their phase starts.
    pub fn new() -> TerminalProgress {
        TerminalProgress {
            multi: MultiProgress::new(),
            hashing: ProgressBar::hidden(),
            metadata: ProgressBar::hidden(),
            uploads: ProgressBar::hidden(),
        }
    }

    fn bar(&self, phase: Phase) -> &ProgressBar {
        match phase {
            Phase::Hashing => &self.hashing,
            Phase::Metadata => &self.metadata,
            Phase::Uploads => &self.uploads,
        }
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for TerminalProgress {
    fn start(&self, phase: Phase, total: u64) {
        let (label, template) = match phase {
            Phase::Hashing => ("hashing ", "{msg} {bar:40} {pos}/{len} files"),
            Phase::Metadata => ("metadata", "{msg} {bar:40} {pos}/{len} items"),
            Phase::Uploads => (
                "uploads ",
                "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
        };
        let bar = self.bar(phase);
        bar.set_length(total);
        bar.set_position(0);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(label);
        self.multi.add(bar.clone());
    }

    fn advance(&self, phase: Phase, n: u64) {
        self.bar(phase).inc(n);
    }

    fn finish(&self, phase: Phase) {
        self.bar(phase).finish();
    }
}
