//! Fixed-capacity, hardware-style tables. Storage is handed in by the platform (device
//! memory), so capacity is fixed when the board or simulator is built, and a full table is
//! an error value, never a crash.
pub mod lpm;
pub mod mapping;
pub mod vpc;

/// Why a table refused a change. A refused change leaves the table as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// An entry with this key is already there.
    Exists,
    /// No entry has this key.
    NotFound,
    /// No room for another entry.
    Full,
}
