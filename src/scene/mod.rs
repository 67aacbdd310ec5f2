//! scene (to be written).
