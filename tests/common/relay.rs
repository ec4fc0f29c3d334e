//! The UDP relay tests put between regions to cut or delay packets (it lives in the library,
//! where `sessionmesh demo` uses it too).

pub use sessionmesh::relay::Relay;
