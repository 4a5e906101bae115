//! Tests of the events channel over a real socket: hello, tenant
//! isolation, limits, slow consumers, heartbeats and credential expiry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::close_code;
use docaiche_core::TenantId;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message as Frame, http};

use super::*;
use crate::config::Config;
use crate::routes::events::{CLOSE_HEARTBEAT_TIMEOUT, CLOSE_SLOW_CONSUMER};
use crate::routes::router;
use crate::state::tests::local_state;
use crate::test_support::TestDir;

type Client = WebSocketStream<TcpStream>;

/// A server on 127.0.0.1:0 with `[events]` = `events`, and API keys of
/// the tenants `acme` and `globex`.
async fn serve(events: EventsSection) -> (SocketAddr, EventBus, String, String, TestDir) {
    let dir = TestDir::new("events");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.events = events;
    let state = local_state(&config);
    let acme = state
        .auth
        .bootstrap_key("acme", "admin", "events")
        .await
        .expect("key");
    let globex = state
        .auth
        .bootstrap_key("globex", "admin", "events")
        .await
        .expect("key");
    let bus = state.events.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (
        addr,
        bus,
        acme.key.expose_secret().clone(),
        globex.key.expose_secret().clone(),
        dir,
    )
}

async fn connect(addr: SocketAddr, key: &str) -> Result<Client, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut request = format!("ws://{addr}/v1/events")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "x-api-key",
        http::HeaderValue::from_str(key).map_err(|e| e.to_string())?,
    );
    let (client, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(client)
}

/// The next data or close message, skipping pings.
async fn next(client: &mut Client) -> Frame {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("frame");
        if !matches!(frame, Frame::Ping(_) | Frame::Pong(_)) {
            return frame;
        }
    }
}

fn json(frame: &Frame) -> serde_json::Value {
    match frame {
        Frame::Text(text) => serde_json::from_str(text).expect("json"),
        other => panic!("expected text, got {other:?}"),
    }
}

fn close_code(frame: &Frame) -> (u16, String) {
    match frame {
        Frame::Close(Some(close)) => (u16::from(close.code), close.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

fn limits() -> EventsSection {
    EventsSection {
        max_connections: 3,
        max_connections_per_tenant: 2,
        ..EventsSection::default()
    }
}

#[tokio::test]
async fn caps_refuse_with_1013_and_free_up_when_a_connection_closes() {
    let (addr, bus, acme, globex, _dir) = serve(limits()).await;
    let mut a1 = connect(addr, &acme).await.expect("acme 1");
    let mut a2 = connect(addr, &acme).await.expect("acme 2");
    assert_eq!(json(&next(&mut a1).await)["type"], "hello");
    assert_eq!(json(&next(&mut a2).await)["tenant"], "acme");

    // The tenant's cap: a third acme connection is closed with 1013.
    let mut a3 = connect(addr, &acme).await.expect("upgraded");
    let (code, reason) = close_code(&next(&mut a3).await);
    assert_eq!(code, close_code::AGAIN);
    assert!(reason.contains("tenant"), "{reason}");

    // The server's cap: globex gets the third place, not a fourth.
    let mut g1 = connect(addr, &globex).await.expect("globex 1");
    assert_eq!(json(&next(&mut g1).await)["tenant"], "globex");
    let mut g2 = connect(addr, &globex).await.expect("upgraded");
    let (code, reason) = close_code(&next(&mut g2).await);
    assert_eq!(code, close_code::AGAIN);
    assert!(reason.contains("server"), "{reason}");
    assert_eq!(bus.connections(), 3);

    // Closing one frees its place.
    a1.close(None).await.expect("close");
    drop(a1);
    let mut freed = false;
    for _ in 0..100 {
        if bus.connections() < 3 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the closed connection gave back its place");
    let mut g3 = connect(addr, &globex).await.expect("globex again");
    assert_eq!(json(&next(&mut g3).await)["type"], "hello");
}

#[tokio::test]
async fn one_principal_cannot_take_its_tenants_whole_share() {
    let dir = TestDir::new("events-principal");
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    config.events = EventsSection {
        max_connections_per_tenant: 3,
        max_connections_per_principal: 2,
        ..EventsSection::default()
    };
    let state = local_state(&config);
    let key = |principal: &'static str| {
        let auth = Arc::clone(&state.auth);
        async move {
            auth.bootstrap_key("acme", principal, "events")
                .await
                .expect("key")
                .key
                .expose_secret()
                .clone()
        }
    };
    let (robot, person) = (key("robot").await, key("person").await);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bus = state.events.clone();
    tokio::spawn(crate::shutdown::serve(
        listener,
        router(state),
        std::future::pending(),
        Duration::from_secs(1),
    ));

    let mut r1 = connect(addr, &robot).await.expect("robot 1");
    let mut r2 = connect(addr, &robot).await.expect("robot 2");
    assert_eq!(json(&next(&mut r1).await)["type"], "hello");
    assert_eq!(json(&next(&mut r2).await)["type"], "hello");
    // The principal's third is closed with 1013, naming its cap.
    let mut r3 = connect(addr, &robot).await.expect("upgraded");
    let (code, reason) = close_code(&next(&mut r3).await);
    assert_eq!(code, close_code::AGAIN);
    assert!(reason.contains("principal"), "{reason}");
    // Another principal of the same tenant still gets in.
    let mut p1 = connect(addr, &person).await.expect("person 1");
    assert_eq!(json(&next(&mut p1).await)["tenant"], "acme");
    assert_eq!(bus.connections(), 3);
    // Closing one of the robot's gives the robot a place again.
    r1.close(None).await.expect("close");
    drop(r1);
    let mut freed = false;
    for _ in 0..100 {
        if bus.connections() < 3 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the closed connection gave back its place");
    let mut r4 = connect(addr, &robot).await.expect("robot again");
    assert_eq!(json(&next(&mut r4).await)["type"], "hello");
}

#[tokio::test]
async fn events_reach_only_the_callers_tenant() {
    let (addr, bus, acme, globex, _dir) = serve(limits()).await;
    let mut a = connect(addr, &acme).await.expect("acme");
    let mut g = connect(addr, &globex).await.expect("globex");
    next(&mut a).await;
    next(&mut g).await;
    let acme_id = TenantId::new("acme").expect("tenant");
    let globex_id = TenantId::new("globex").expect("tenant");
    let progress = Event::new(
        "job.progress",
        serde_json::json!({ "job": "j1", "done": 3 }),
    );
    assert_eq!(bus.publish(&acme_id, &progress), 1);
    let marker = Event::new("document.created", serde_json::json!({ "id": "d9" }));
    assert_eq!(bus.publish(&globex_id, &marker), 1);
    let event = json(&next(&mut a).await);
    assert_eq!(event["type"], "job.progress");
    assert_eq!(event["tenant"], "acme");
    assert_eq!(event["data"]["done"], 3);
    // globex's first event is its own: acme's never reached it.
    let event = json(&next(&mut g).await);
    assert_eq!(event["type"], "document.created");
    assert_eq!(event["tenant"], "globex");
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_4000_and_its_queue_stays_bounded() {
    let (addr, bus, acme, _, _dir) = serve(EventsSection {
        send_queue: 4,
        send_timeout_secs: 5,
        ..limits()
    })
    .await;
    // A client that never reads.
    let mut slow = connect(addr, &acme).await.expect("acme");
    let tenant = TenantId::new("acme").expect("tenant");
    let payload = "x".repeat(64 * 1024);
    let event = Event::new("document.created", serde_json::json!({ "pad": payload }));
    let mut published = 0;
    while bus.slow_closed() == 0 {
        published += 1;
        assert!(published < 10_000, "never counted as slow");
        bus.publish(&tenant, &event);
        // Let the connection's task run between publishes.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Unsubscribed: further events are not queued for it.
    assert_eq!(bus.publish(&tenant, &event), 0);
    // The client finally reads: the queued events, then the close.
    let mut seen = 0;
    let (code, reason) = loop {
        match next(&mut slow).await {
            Frame::Text(_) => seen += 1,
            Frame::Close(frame) => {
                break close_code(&Frame::Close(frame));
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, CLOSE_SLOW_CONSUMER, "{reason}");
    assert!(reason.starts_with("slow consumer"), "{reason}");
    assert!(
        seen < published,
        "not everything was buffered: {seen}/{published}"
    );
    let _ = CloseCode::from(code);
}

#[tokio::test]
async fn a_client_data_message_is_a_policy_violation_and_anonymous_upgrades_are_401() {
    let (addr, _, acme, _, _dir) = serve(limits()).await;
    let mut client = connect(addr, &acme).await.expect("acme");
    next(&mut client).await;
    client
        .send(Frame::Text("hello?".into()))
        .await
        .expect("send");
    let (code, _) = close_code(&next(&mut client).await);
    assert_eq!(code, close_code::POLICY);

    let err = connect(addr, "dcak_not_a_key").await.expect_err("refused");
    assert!(err.contains("401"), "{err}");
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let (addr, _, acme, _, _dir) = serve(EventsSection {
        heartbeat_secs: 1,
        idle_timeout_secs: 2,
        ..limits()
    })
    .await;
    // tungstenite answers pings only while the client reads; a raw
    // client that reads nothing after the hello never pongs.
    let mut client = connect(addr, &acme).await.expect("acme");
    next(&mut client).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut code = None;
    while let Some(Ok(frame)) = client.next().await {
        if let Frame::Close(Some(close)) = frame {
            code = Some(u16::from(close.code));
            break;
        }
    }
    assert_eq!(code, Some(CLOSE_HEARTBEAT_TIMEOUT));
}

#[test]
fn limits_are_validated() {
    assert!(EventsSection::default().validate().is_ok());
    for bad in [
        EventsSection {
            max_connections: 0,
            ..EventsSection::default()
        },
        EventsSection {
            send_queue: 0,
            ..EventsSection::default()
        },
        EventsSection {
            idle_timeout_secs: 5,
            heartbeat_secs: 5,
            ..EventsSection::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}
