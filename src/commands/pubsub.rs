//! Pub/sub commands: SUBSCRIBE PSUBSCRIBE SSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH SPUBLISH, PUBSUB
//! (Redis's pubsub.c). Delivery is the hub's job (src/pubsub.rs); this file keeps each client's
//! own list of subscriptions and answers in Redis's reply shapes.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{eq_ic, sub_arity, CmdError, CmdResult, Ctx};
use crate::client::Client;
use crate::protocol::Reply;
use crate::pubsub::{Kind, PubSub};

/// A client's subscriptions, per kind, in the order they were made.
#[derive(Default)]
pub struct Subscriptions {
    names: [Vec<Bytes>; 3],
}

impl Subscriptions {
    fn of(&self, kind: Kind) -> &Vec<Bytes> {
        &self.names[kind as usize]
    }

    /// Redis's clientSubscriptionsCount (channels and patterns) or, for shard channels,
    /// clientShardSubscriptionsCount.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.names[2].len(),
            _ => self.names[0].len() + self.names[1].len(),
        }
    }

    /// Whether the client is in subscribed mode (RESP2 then allows only the pub/sub commands).
    pub fn active(&self) -> bool {
        self.names.iter().any(|n| !n.is_empty())
    }
}

fn publish_counts(client: &Client) {
    for kind in Kind::ALL {
        client.info.subs[kind as usize].store(client.subscriptions.of(kind).len(), Relaxed);
    }
}

fn confirm(out: &mut Reply, word: &str, name: Option<&[u8]>, count: usize) {
    out.push(3);
    out.bulk(word.as_bytes());
    out.bulk_or_null(name);
    out.int(count as i64);
}

fn subscribe_generic(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind) -> CmdResult {
    let hub = &ctx.server.pubsub;
    for name in &args[1..] {
        if hub.subscribe(kind, name, &ctx.client.info) {
            ctx.client.subscriptions.names[kind as usize].push(name.clone());
        }
        confirm(ctx.out, kind.words().0, Some(name), ctx.client.subscriptions.count(kind));
    }
    publish_counts(ctx.client);
    Ok(())
}

/// Unsubscribes from `names`, or from everything of that kind when `names` is empty.
fn unsubscribe_generic(hub: &PubSub, client: &mut Client, out: Option<&mut Reply>, names: &[Bytes], kind: Kind) {
    let mut out = out;
    let all: Vec<Bytes>;
    let names = if names.is_empty() {
        all = client.subscriptions.of(kind).clone();
        &all[..]
    } else {
        names
    };
    for name in names {
        if hub.unsubscribe(kind, name, client.info.id) {
            client.subscriptions.names[kind as usize].retain(|n| n != name);
        }
        if let Some(out) = out.as_deref_mut() {
            confirm(out, kind.words().1, Some(name), client.subscriptions.count(kind));
        }
    }
    if names.is_empty() {
        if let Some(out) = out {
            confirm(out, kind.words().1, None, client.subscriptions.count(kind));
        }
    }
    publish_counts(client);
}

pub fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Channel)
}

pub fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Pattern)
}

pub fn ssubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Shard)
}

pub fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(&ctx.server.pubsub, ctx.client, Some(ctx.out), &args[1..], Kind::Channel);
    Ok(())
}

pub fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(&ctx.server.pubsub, ctx.client, Some(ctx.out), &args[1..], Kind::Pattern);
    Ok(())
}

pub fn sunsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(&ctx.server.pubsub, ctx.client, Some(ctx.out), &args[1..], Kind::Shard);
    Ok(())
}

/// Drops every subscription silently (RESET, disconnect).
pub fn unsubscribe_all(hub: &PubSub, client: &mut Client) {
    for kind in Kind::ALL {
        unsubscribe_generic(hub, client, None, &[], kind);
    }
}

fn publish_generic(ctx: &mut Ctx<'_>, args: &[Bytes], shard: bool) -> CmdResult {
    let me = Some((ctx.client.info.id, &mut *ctx.out));
    let n = ctx.server.pubsub.publish(shard, &args[1], &args[2], me);
    ctx.out.int(n as i64);
    Ok(())
}

pub fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    publish_generic(ctx, args, false)
}

pub fn spublish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    publish_generic(ctx, args, true)
}

pub fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let hub = &ctx.server.pubsub;
    if eq_ic(sub, "help") {
        return super::docs::help(ctx, "pubsub");
    }
    let channels = |ctx: &mut Ctx<'_>, kind: Kind, full: &str| {
        sub_arity(args, -2, full)?;
        if args.len() > 3 {
            // The table allows any number of patterns; pubsubCommand itself refuses more than one
            // with addReplySubcommandSyntaxError (the subcommand as typed, the command uppercased).
            return Err(CmdError::msg(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
                String::from_utf8_lossy(&sub[..sub.len().min(128)]),
                String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
            )));
        }
        let names = hub.names(kind, args.get(2).map(|p| &p[..]));
        ctx.out.array(names.len());
        names.iter().for_each(|n| ctx.out.bulk(n));
        Ok(())
    };
    let numsub = |ctx: &mut Ctx<'_>, kind: Kind| {
        ctx.out.array((args.len() - 2) * 2);
        for name in &args[2..] {
            ctx.out.bulk(name);
            ctx.out.int(hub.count(kind, name) as i64);
        }
    };
    if eq_ic(sub, "channels") {
        channels(ctx, Kind::Channel, "pubsub|channels")?;
    } else if eq_ic(sub, "shardchannels") {
        channels(ctx, Kind::Shard, "pubsub|shardchannels")?;
    } else if eq_ic(sub, "numsub") {
        numsub(ctx, Kind::Channel);
    } else if eq_ic(sub, "shardnumsub") {
        numsub(ctx, Kind::Shard);
    } else if eq_ic(sub, "numpat") {
        sub_arity(args, 2, "pubsub|numpat")?;
        ctx.out.int(hub.len(Kind::Pattern) as i64);
    } else {
        return Err(CmdError::unknown_subcommand(sub, "pubsub"));
    }
    Ok(())
}
