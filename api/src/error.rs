//! The one error envelope every route answers with.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{ "error": { "code": "snake_case_code", "message": "…" } }`: the body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable machine-readable code and a human message naming the field or value at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable `snake_case` code a client may branch on.
    pub code: String,
    /// What is wrong, for a person; never internal detail on a 5xx.
    pub message: String,
}

impl ErrorBody {
    /// Builds an envelope from a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}
