//! collector (to be written).
