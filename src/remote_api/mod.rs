//! remote_api (to be written).
