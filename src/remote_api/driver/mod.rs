//! driver (wip)
