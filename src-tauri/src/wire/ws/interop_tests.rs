//! Interop over real loopback TCP with tokio-tungstenite as the peer, both roles.

use super::*;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode as TOp};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// Sizes around every length-encoding boundary, and a large one.
const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 200_000];

fn ascii(n: usize, seed: usize) -> String {
    (0..n)
        .map(|i| char::from(b'a' + ((i * 7 + seed) % 26) as u8))
        .collect()
}

const MULTIBYTE: &str = "héllo ✓ 🎉 — Grüße";

/// Our server side of the handshake, by hand: read the request, answer 101, hand over any bytes
/// read past the request.
async fn accept_by_hand(listener: &TcpListener) -> WsConn<TcpStream> {
    let (mut tcp, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let end = loop {
        let mut chunk = [0u8; 512];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "EOF during handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let key = head
        .split("\r\n")
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        })
        .unwrap();
    tcp.write_all(server_response(key).as_bytes())
        .await
        .unwrap();
    WsConn::new(tcp, Role::Server, Limits::default(), &buf[end..])
}

/// Our client side of the handshake over `tcp`.
async fn connect_by_hand(mut tcp: TcpStream, host: &str) -> WsConn<TcpStream> {
    let (req, key) = client_request(
        host,
        "/v1/realtime?model=x",
        &[("Authorization", "Bearer test-token")],
    )
    .unwrap();
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 512];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "EOF during handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some((consumed, status)) = parse_response(&buf, &key).unwrap() {
            assert_eq!(status, 101);
            return WsConn::new(tcp, Role::Client, Limits::default(), &buf[consumed..]);
        }
    }
}

/// One data frame of a message (`fin`: its last), as tungstenite sends it.
async fn send_fragment<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
    text: &str,
    data: Data,
    fin: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::Frame(Frame::message(
        text.to_string(),
        TOp::Data(data),
        fin,
    )))
    .await
    .unwrap();
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("test timed out")
}

#[tokio::test]
async fn our_server_with_tungstenite_client() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();

        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/media"), tcp)
                .await
                .unwrap();
            let mut texts: Vec<String> = SIZES
                .iter()
                .enumerate()
                .map(|(i, &n)| ascii(n, i))
                .collect();
            texts.push(MULTIBYTE.to_owned());
            for t in &texts {
                ws.send(Message::text(t.as_str())).await.unwrap();
                assert_eq!(
                    ws.next().await.unwrap().unwrap(),
                    Message::text(t.as_str()),
                    "echo of {} bytes",
                    t.len()
                );
            }
            // Many small messages sent back to back before reading the echoes.
            for i in 0..500 {
                ws.feed(Message::text(format!("burst {i}"))).await.unwrap();
            }
            ws.flush().await.unwrap();
            for i in 0..500 {
                assert_eq!(
                    ws.next().await.unwrap().unwrap(),
                    Message::text(format!("burst {i}"))
                );
            }
            let bin: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
            ws.send(Message::binary(bin.clone())).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(bin));

            ws.send(Message::Ping("heartbeat".into())).await.unwrap();
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::Pong("heartbeat".into())
            );

            // A fragmented text message with a ping between its fragments.
            send_fragment(&mut ws, "frag-", Data::Text, false).await;
            send_fragment(&mut ws, "men", Data::Continue, false).await;
            ws.send(Message::Ping("mid".into())).await.unwrap();
            send_fragment(&mut ws, "t ✓", Data::Continue, true).await;
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::Pong("mid".into())
            );
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::text("frag-ment ✓")
            );

            // The client closes; our server echoes code and (no) reason.
            ws.close(Some(CloseFrame {
                code: CloseCode::from(4001),
                reason: "client done".into(),
            }))
            .await
            .unwrap();
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4001),
                other => panic!("expected the close echo, got {other:?}"),
            }
            assert!(ws.next().await.is_none());
        });

        let mut conn = accept_by_hand(&listener).await;
        let mut echoed = 0;
        loop {
            match conn.next().await.unwrap().unwrap() {
                Incoming::Text(t) => {
                    // The message owns its bytes: queue while holding it.
                    conn.queue_text(&t).unwrap();
                    conn.flush().await.unwrap();
                }
                Incoming::Binary(b) => {
                    conn.queue_binary(&b).unwrap();
                    conn.flush().await.unwrap();
                }
                Incoming::Close(status) => {
                    assert_eq!(status, Some((4001, "client done".to_owned())));
                    break;
                }
            }
            echoed += 1;
        }
        assert_eq!(echoed, SIZES.len() + 1 + 500 + 1 + 1);
        assert!(conn.next().await.is_none());
        assert!(matches!(conn.send_text("late").await, Err(WsError::Closed)));
        conn.shutdown().await.unwrap();
        drop(conn);
        client.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn our_server_closes_first() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp)
                .await
                .unwrap();
            assert_eq!(
                ws.next().await.unwrap().unwrap(),
                Message::text("last words")
            );
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(u16::from(frame.code), 1001);
                    assert_eq!(frame.reason.as_str(), "going away");
                }
                other => panic!("expected our close, got {other:?}"),
            }
            // tungstenite has queued its echo; drive it out and wait for our end of the TCP.
            while let Some(Ok(_)) = ws.next().await {}
        });
        let mut conn = accept_by_hand(&listener).await;
        conn.send_text("last words").await.unwrap();
        conn.close(1001, "going away").await.unwrap();
        match conn.next().await {
            Some(Ok(Incoming::Close(Some((1001, reason))))) => assert_eq!(reason, "going away"),
            other => panic!("expected the echo, got {other:?}"),
        }
        assert!(conn.next().await.is_none());
        conn.shutdown().await.unwrap();
        drop(conn);
        client.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn our_client_with_tungstenite_server() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();

        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // tungstenite's callback signature has a large error type; not ours to shrink.
            #[allow(clippy::result_large_err)]
            let check_auth = |req: &Request, resp: Response| {
                assert_eq!(req.uri().path(), "/v1/realtime");
                assert_eq!(req.headers()["authorization"], "Bearer test-token");
                Ok(resp)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, check_auth)
                .await
                .unwrap();
            // Unprompted: a ping, then a fragmented text with a pong between the fragments.
            ws.send(Message::Ping("srv".into())).await.unwrap();
            send_fragment(&mut ws, "server-", Data::Text, false).await;
            ws.send(Message::Pong("unsolicited".into())).await.unwrap();
            send_fragment(&mut ws, "fragmented", Data::Continue, true).await;
            while let Some(msg) = ws.next().await {
                match msg.unwrap() {
                    Message::Pong(p) => {
                        let reply = format!("got pong: {}", std::str::from_utf8(&p).unwrap());
                        ws.send(Message::text(reply)).await.unwrap();
                    }
                    Message::Close(frame) => {
                        let frame = frame.unwrap();
                        assert_eq!(u16::from(frame.code), 1000);
                        assert_eq!(frame.reason.as_str(), "bye");
                        // tungstenite queued the echo; flush it and end.
                        ws.flush().await.unwrap();
                        break;
                    }
                    m @ (Message::Text(_) | Message::Binary(_)) => ws.send(m).await.unwrap(),
                    other => panic!("unexpected {other:?}"),
                }
            }
        });

        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut conn = connect_by_hand(tcp, &addr.to_string()).await;
        let next_text = |m: Option<Result<Incoming, WsError>>| match m {
            Some(Ok(Incoming::Text(t))) => t.as_str().to_owned(),
            other => panic!("expected text, got {other:?}"),
        };
        assert_eq!(next_text(conn.next().await), "server-fragmented");
        assert_eq!(next_text(conn.next().await), "got pong: srv");

        let mut texts: Vec<String> = SIZES
            .iter()
            .enumerate()
            .map(|(i, &n)| ascii(n, i))
            .collect();
        texts.push(MULTIBYTE.to_owned());
        for t in &texts {
            conn.send_text(t).await.unwrap();
            assert_eq!(
                next_text(conn.next().await),
                *t,
                "echo of {} bytes",
                t.len()
            );
        }
        // A burst queued and written with one flush.
        for i in 0..500 {
            conn.queue_text(&format!("burst {i}")).unwrap();
        }
        conn.flush().await.unwrap();
        for i in 0..500 {
            assert_eq!(next_text(conn.next().await), format!("burst {i}"));
        }
        let bin: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        conn.queue_binary(&bin).unwrap();
        conn.flush().await.unwrap();
        match conn.next().await {
            Some(Ok(Incoming::Binary(b))) => assert_eq!(&b[..], &bin[..]),
            other => panic!("expected binary, got {other:?}"),
        }

        conn.close(1000, "bye").await.unwrap();
        assert!(matches!(conn.send_text("late").await, Err(WsError::Closed)));
        match conn.next().await {
            Some(Ok(Incoming::Close(status))) => assert_eq!(status, Some((1000, "bye".to_owned()))),
            other => panic!("expected the close echo, got {other:?}"),
        }
        assert!(conn.next().await.is_none());
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn tungstenite_server_refuses_our_violation_with_1002() {
    // A sanity check that the peer is strict too: a frame we build unmasked as a "client" is
    // refused by tungstenite, so the interop tests above would notice a masking bug.
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            assert!(
                ws.next().await.unwrap().is_err(),
                "unmasked client frame must be refused"
            );
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut conn = connect_by_hand(tcp, &addr.to_string()).await;
        // Write an unmasked frame straight to the socket, bypassing the framing layer.
        let mut raw = Vec::new();
        frame::write_header(&mut raw, true, frame::OpCode::Text, None, 2);
        raw.extend_from_slice(b"hi");
        conn.get_mut().write_all(&raw).await.unwrap();
        server.await.unwrap();
    })
    .await;
}
