//! The far side of an owner link as a command: what the shard of one object asks the
//! shard of the other to record, directly or through the outbox.

use crate::key::ObjectKey;
use crate::model::LinkRole;
use serde::{Deserialize, Serialize};

/// Asks the target object's shard to record a link to `linked` in the target's trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCommand {
    /// The object whose trace receives the link span.
    pub target: ObjectKey,
    /// API version to use if the target's object span must be created.
    pub target_version: String,
    /// The other end of the link.
    pub linked: ObjectKey,
    /// Role of `linked` relative to `target`.
    pub role: LinkRole,
    /// Link class.
    pub class: String,
    /// Event time that caused the link; picks the window.
    pub time_us: i64,
}
