//! Blocking commands' common part (Redis's blocked.c): the timeout argument, and what a handler
//! does when there is nothing to serve yet.
//!
//! A blocking handler first tries to serve at once, exactly as its non-blocking twin; when the
//! keys are empty it calls [`Ctx::block`]. Inside MULTI/EXEC (and when re-run to serve a waiting
//! client) that answers the timeout reply at once, as Redis does; otherwise the client waits.

use bytes::Bytes;

use super::{CmdError, CmdResult, Ctx};

/// What a blocked command answers when its timeout passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutReply {
    /// BLPOP, BRPOP, BLMPOP, BZPOPMIN ...: a null array (RESP2 `*-1`).
    NullArray,
    /// BLMOVE, BRPOPLPUSH: a null bulk string (RESP2 `$-1`).
    NullBulk,
}

/// A client waiting on keys: set by [`Ctx::block`], read by the connection.
#[derive(Clone, Debug)]
pub struct BlockOn {
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// Unix ms after which the client gets `timeout_reply`; None waits for ever.
    pub deadline: Option<i64>,
    pub timeout_reply: TimeoutReply,
}

/// A blocking command's timeout in seconds (fractions allowed; 0 waits for ever), as the absolute
/// deadline in unix ms. Redis's getTimeoutFromObjectOrReply with its error texts.
pub fn parse_timeout(arg: &[u8], now: i64) -> Result<Option<i64>, CmdError> {
    let secs = super::parse_f64(arg).map_err(|_| CmdError::msg("ERR timeout is not a float or out of range"))?;
    let ms = secs * 1000.0;
    if ms > i64::MAX as f64 {
        return Err(CmdError::msg("ERR timeout is out of range"));
    }
    let ms = ms.ceil() as i64;
    if ms < 0 {
        return Err(CmdError::msg("ERR timeout is negative"));
    }
    if ms == 0 {
        return Ok(None);
    }
    if ms > i64::MAX - now {
        return Err(CmdError::msg("ERR timeout is out of range"));
    }
    Ok(Some(now + ms))
}

pub fn write_timeout_reply(out: &mut crate::protocol::Reply, how: TimeoutReply) {
    match how {
        TimeoutReply::NullArray => out.null_array(),
        TimeoutReply::NullBulk => out.null(),
    }
}

impl Ctx<'_> {
    /// Nothing to serve on `keys` now: wait for a push to one of them, or answer the timeout reply
    /// at once where a client cannot wait (inside a transaction).
    pub fn block(&mut self, keys: &[Bytes], deadline: Option<i64>, timeout_reply: TimeoutReply) -> CmdResult {
        if self.client.executing_transaction || !self.client.may_block {
            write_timeout_reply(self.out, timeout_reply);
            return Ok(());
        }
        self.client.blocked = Some(BlockOn {
            db: self.client.db,
            keys: keys.to_vec(),
            deadline,
            timeout_reply,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_redis() {
        assert_eq!(parse_timeout(b"0", 1000), Ok(None));
        assert_eq!(parse_timeout(b"1.5", 1000), Ok(Some(2500)));
        assert_eq!(parse_timeout(b"0.0001", 1000), Ok(Some(1001)));
        assert_eq!(parse_timeout(b"-1", 0).unwrap_err().0, "ERR timeout is negative");
        assert_eq!(parse_timeout(b"abc", 0).unwrap_err().0, "ERR timeout is not a float or out of range");
        assert_eq!(parse_timeout(b"1e300", 0).unwrap_err().0, "ERR timeout is out of range");
    }
}
