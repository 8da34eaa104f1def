//! The admin queue and command handler.
