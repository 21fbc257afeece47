//! The byte stream under a call's media socket.
//!
//! hyper hands an upgraded connection back as `Upgraded`: a boxed `dyn Io` behind a rewind buffer, so
//! every read and write of the socket went through two more layers and one more heap object than the
//! TCP stream itself (at 300 calls the bridge is bound by cache misses, one per object a frame touches:
//! BENCHMARKS.md, issue 16). When the connection is the server's own TCP stream (always, from
//! [`crate::server::http::serve`]), the call takes it back whole; anything else stays wrapped.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// A media socket's connection.
pub enum MediaStream {
    /// The accepted TCP stream, holding the listener's connection slot until the call ends.
    Tcp {
        stream: TcpStream,
        slot: Option<OwnedSemaphorePermit>,
    },
    /// Some other upgraded connection.
    Upgraded(TokioIo<hyper::upgrade::Upgraded>),
}

impl MediaStream {
    /// Whether the call owns the TCP stream directly.
    pub fn is_tcp(&self) -> bool {
        matches!(self, MediaStream::Tcp { .. })
    }
}

impl AsyncRead for MediaStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MediaStream::Tcp { stream, .. } => Pin::new(stream).poll_read(cx, buf),
            MediaStream::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MediaStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MediaStream::Tcp { stream, .. } => Pin::new(stream).poll_write(cx, buf),
            MediaStream::Upgraded(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MediaStream::Tcp { stream, .. } => Pin::new(stream).poll_flush(cx),
            MediaStream::Upgraded(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MediaStream::Tcp { stream, .. } => Pin::new(stream).poll_shutdown(cx),
            MediaStream::Upgraded(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
