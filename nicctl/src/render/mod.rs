//! What nicctl prints: one module per kind of report, text (and the JSON shapes where the
//! driver's types are not already the answer).
pub mod port;
pub mod report;
pub mod show;
pub mod sriov;
