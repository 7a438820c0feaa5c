//! RESP on the wire: the request decoder (bulk arrays and inline commands, with Redis's limits) and
//! the reply writer (RESP2 or RESP3 into one reusable output buffer). Knows nothing of commands.

pub mod decode;
pub mod reply;

pub use decode::{Decoder, Limits, ProtocolError};
pub use reply::Reply;
