//! standin (to be written).
