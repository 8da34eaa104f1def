//! The forwarding pipeline: a function over a batch of frames and the tables.
