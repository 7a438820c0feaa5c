//! MULTI/EXEC/DISCARD/WATCH/UNWATCH (Redis's multi.c). Queued commands run under the keyspace's
//! world lock, so nothing interleaves with a transaction.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{CmdError, CmdResult, Ctx};
use crate::client::Client;
use crate::keyspace::Keyspace;

pub fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_failed = false;
    ctx.client.info.multi.store(0, Ordering::Relaxed);
    ctx.out.ok();
    Ok(())
}

pub fn exec(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let Some(queue) = ctx.client.multi.take() else {
        return Err(CmdError::msg("ERR EXEC without MULTI"));
    };
    ctx.client.info.multi.store(-1, Ordering::Relaxed);
    let failed = std::mem::take(&mut ctx.client.multi_failed);
    // As Redis's isWatchedKeyExpired: a watched key whose TTL ran out since WATCH counts as
    // modified even if nothing has reclaimed it yet.
    let now = ctx.now;
    let expired_since = ctx
        .client
        .watched
        .iter()
        .any(|(db, key, expired_at_watch)| !expired_at_watch && ctx.server.keyspace.is_expired_in_place(*db, key, now));
    let dirty = ctx.client.watch_flag.load(Ordering::Relaxed) || expired_since;
    unwatch_all(&ctx.server.keyspace, ctx.client);
    if failed {
        return Err(CmdError::msg("EXECABORT Transaction discarded because of previous errors."));
    }
    if dirty {
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(queue.len());
    ctx.client.executing_transaction = true;
    for args in &queue {
        let idx = super::lookup(&args[0]).expect("validated when queued");
        super::call(ctx.server, ctx.client, ctx.out, idx, args);
    }
    ctx.client.executing_transaction = false;
    Ok(())
}

/// Drops the client's transaction, if any, and its WATCHes (DISCARD, RESET, a refused EXEC).
pub fn end_transaction(ks: &Keyspace, client: &mut Client) {
    client.multi = None;
    client.multi_failed = false;
    client.info.multi.store(-1, Ordering::Relaxed);
    unwatch_all(ks, client);
}

pub fn discard(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_none() {
        return Err(CmdError::msg("ERR DISCARD without MULTI"));
    }
    end_transaction(&ctx.server.keyspace, ctx.client);
    ctx.out.ok();
    Ok(())
}

pub fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::msg("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    for key in &args[1..] {
        if ctx.client.watched.iter().any(|(d, k, _)| *d == db && **k == **key) {
            continue;
        }
        ctx.server.keyspace.watch(db, key, &ctx.client.watch_flag);
        let expired = ctx.server.keyspace.is_expired_in_place(db, key, ctx.now);
        ctx.client.watched.push((db, key[..].into(), expired));
    }
    ctx.out.ok();
    Ok(())
}

pub fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    unwatch_all(&ctx.server.keyspace, ctx.client);
    ctx.out.ok();
    Ok(())
}

/// Drops every WATCH of a client (EXEC, DISCARD, UNWATCH, RESET, disconnect).
pub fn unwatch_all(ks: &Keyspace, client: &mut Client) {
    for (db, key, _) in client.watched.drain(..) {
        ks.unwatch(db, &key, &client.watch_flag);
    }
    client.watch_flag.store(false, Ordering::Relaxed);
}
