//! The [`InvalidationBus`] suite.

use std::sync::Arc;
use std::time::Duration;

use docaiche_core::ErrorCode;
use docaiche_core::invalidation::{Invalidation, InvalidationBus, MAX_INVALIDATION_LEN};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use super::{Case, Harness};

const SUITE: &str = "InvalidationBus";

/// The longest a case waits for one delivery.
const DELIVERY: Duration = Duration::from_secs(10);

/// Run the whole [`InvalidationBus`] contract against `bus`. Every case
/// uses channels of its own, so it runs beside other users of a shared
/// server.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_invalidation_bus(bus: Arc<dyn InvalidationBus>, harness: &Harness) {
    a_live_subscription_hears_keys_in_order(&*bus, harness).await;
    channels_are_separate(&*bus, harness).await;
    every_subscription_hears_every_key(&*bus, harness).await;
    printable_keys_arrive_intact(&*bus, harness).await;
    invalid_channels_and_keys_are_refused(&*bus, harness).await;
}

/// The next item, within [`DELIVERY`].
async fn next(
    case: Case,
    stream: &mut BoxStream<'static, Invalidation>,
    what: &str,
) -> Invalidation {
    match tokio::time::timeout(DELIVERY, stream.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => case.fail(format_args!("{what}: the subscription ended")),
        Err(_) => case.fail(format_args!("{what}: nothing within {DELIVERY:?}")),
    }
}

/// Subscribe to `channel` and wait for it to be live (its first `All`).
async fn live(
    case: Case,
    bus: &dyn InvalidationBus,
    channel: &str,
) -> BoxStream<'static, Invalidation> {
    let mut stream = case.ok(bus.subscribe(channel), "subscribe");
    let first = next(case, &mut stream, "the first item").await;
    case.eq(
        &first,
        &Invalidation::All,
        "the first item of a subscription",
    );
    stream
}

async fn a_live_subscription_hears_keys_in_order(bus: &dyn InvalidationBus, h: &Harness) {
    let case = Case::new(SUITE, "a_live_subscription_hears_keys_in_order");
    let channel = h.unique("channel");
    case.ok(
        bus.publish(&h.unique("nobody-listens"), "k").await,
        "publish with no subscription",
    );
    let mut stream = live(case, bus, &channel).await;
    let keys: Vec<String> = (0..3).map(|_| h.unique("key")).collect();
    for key in &keys {
        case.ok(bus.publish(&channel, key).await, "publish");
    }
    for key in &keys {
        let item = next(case, &mut stream, "a published key").await;
        case.eq(
            &item,
            &Invalidation::Key(key.clone()),
            "keys in publish order",
        );
    }
}

async fn channels_are_separate(bus: &dyn InvalidationBus, h: &Harness) {
    let case = Case::new(SUITE, "channels_are_separate");
    let (one, two) = (h.unique("channel"), h.unique("channel"));
    let mut first = live(case, bus, &one).await;
    let mut second = live(case, bus, &two).await;
    case.ok(bus.publish(&two, "for-two").await, "publish");
    case.ok(bus.publish(&one, "for-one").await, "publish");
    let item = next(case, &mut first, "the first channel").await;
    case.eq(
        &item,
        &Invalidation::Key("for-one".into()),
        "only its own channel",
    );
    let item = next(case, &mut second, "the second channel").await;
    case.eq(
        &item,
        &Invalidation::Key("for-two".into()),
        "only its own channel",
    );
}

async fn every_subscription_hears_every_key(bus: &dyn InvalidationBus, h: &Harness) {
    let case = Case::new(SUITE, "every_subscription_hears_every_key");
    let channel = h.unique("channel");
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(live(case, bus, &channel).await);
    }
    let key = h.unique("key");
    case.ok(bus.publish(&channel, &key).await, "publish");
    for stream in &mut streams {
        let item = next(case, stream, "one of three subscriptions").await;
        case.eq(&item, &Invalidation::Key(key.clone()), "every subscription");
    }
}

async fn printable_keys_arrive_intact(bus: &dyn InvalidationBus, h: &Harness) {
    let case = Case::new(SUITE, "printable_keys_arrive_intact");
    let channel = h.unique("channel");
    let mut stream = live(case, bus, &channel).await;
    let punctuation = "*?[]{}%:'\"\\/;|&$`~#!-_=+<>,.^()@";
    let longest = "k".repeat(MAX_INVALIDATION_LEN);
    for key in [punctuation, longest.as_str()] {
        case.ok(bus.publish(&channel, key).await, "publish");
        let item = next(case, &mut stream, "a printable key").await;
        case.eq(&item, &Invalidation::Key(key.to_owned()), "the key as sent");
    }
}

async fn invalid_channels_and_keys_are_refused(bus: &dyn InvalidationBus, h: &Harness) {
    let case = Case::new(SUITE, "invalid_channels_and_keys_are_refused");
    let channel = h.unique("channel");
    let too_long = "k".repeat(MAX_INVALIDATION_LEN + 1);
    for bad in [
        "",
        "a b",
        "x\r\nPUBLISH y z",
        "tab\there",
        "ünïcode",
        &too_long,
    ] {
        case.err(
            bus.publish(&channel, bad).await,
            ErrorCode::InvalidInput,
            "publish of an invalid key",
        );
        case.err(
            bus.publish(bad, "k").await,
            ErrorCode::InvalidInput,
            "publish on an invalid channel",
        );
        case.err(
            bus.subscribe(bad).map(|_| ()),
            ErrorCode::InvalidInput,
            "subscribe to an invalid channel",
        );
    }
}
