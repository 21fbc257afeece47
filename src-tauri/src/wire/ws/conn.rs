//! A WebSocket connection over an already-upgraded byte stream: reads and assembles messages,
//! answers pings and closes, writes text frames from one reusable buffer.

use std::future::poll_fn;
use std::io;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame::{self, FrameHeader, OpCode};

/// Spare room made in the read buffer before a read when it runs low. A call's messages are mostly
/// 0.3–1.5 KB (a bigger one arrives in more reads), and every live call holds two of these buffers.
const READ_CHUNK: usize = 2 * 1024;

/// The most read-buffer room made at once for a large frame: it grows as the bytes arrive, not
/// on the peer's say-so (a 16 MiB header followed by silence costs 64 KiB, not 16 MiB).
const MAX_RESERVE_STEP: usize = 64 * 1024;

/// Extra room when a small write buffer grows, so a batch a little larger than the last one
/// (a longer mark name, a bigger delta) does not reallocate it again.
const WRITE_SLACK: usize = 256;

/// A write buffer grown past this (by a large message) is shrunk back once it has drained.
const WRITE_BUF_KEEP: usize = 256 * 1024;

/// Which end of the connection we are (RFC 6455 §5.1, §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection: incoming frames must be masked, ours are not.
    Server,
    /// We opened the connection: we mask every frame, incoming frames must not be masked.
    Client,
}

/// Size limits on what the peer sends, checked on the header, before any payload is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest assembled data message (all its fragments), in bytes.
    pub max_message: usize,
    /// The largest single frame payload, in bytes.
    pub max_frame: usize,
}

impl Default for Limits {
    /// 16 MiB for both, as tungstenite's frame default.
    fn default() -> Self {
        Limits {
            max_message: 16 << 20,
            max_frame: 16 << 20,
        }
    }
}

/// Why the connection failed. Messages never contain payload bytes.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The underlying stream failed, or ended in the middle of a frame or message
    /// ([`io::ErrorKind::UnexpectedEof`]).
    #[error("websocket I/O error: {0}")]
    Io(#[from] io::Error),
    /// The peer broke RFC 6455. We sent it a 1002 close (best effort); the connection is done.
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
    /// A text message that is not UTF-8. We sent a 1007 close (best effort).
    #[error("websocket text message is not valid UTF-8")]
    InvalidUtf8,
    /// A frame or message over its [`Limits`], refused before buffering it. We sent a 1009 close
    /// (best effort).
    #[error("websocket {what} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// `"frame"` or `"message"`.
        what: &'static str,
        /// The announced (frame) or accumulated (message) size.
        len: u64,
        /// The limit it broke.
        limit: usize,
    },
    /// A close frame was already sent (by [`WsConn::close`], as an echo or after an error), so
    /// nothing more may be sent.
    #[error("websocket is closed for sending")]
    Closed,
    /// [`WsConn::close`] was asked for a status code that may not go on the wire.
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
}

/// UTF-8-validated text owning its bytes: a [`Bytes`] split off the read buffer, not a copy.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TextBytes(Bytes);

impl TextBytes {
    /// Wraps `bytes` if they are UTF-8.
    pub fn new(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(TextBytes(bytes))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // SAFETY: the only constructor, `new`, checked that the bytes are UTF-8, and `Bytes` is
        // immutable.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes (still valid UTF-8).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for TextBytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TextBytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for TextBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for TextBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message from the peer. Pings and pongs are handled inside and never show up here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A complete text message.
    Text(TextBytes),
    /// A complete binary message.
    Binary(Bytes),
    /// The peer's close frame: its status code and reason, if it sent one. Our echo has been
    /// queued (and tried); the next [`WsConn::next`] returns `None`. Then [`WsConn::close`] (to
    /// be sure the echo is out) and drop or [`WsConn::shutdown`] the connection.
    Close(Option<(u16, String)>),
}

/// A data message being assembled from fragments.
struct Partial {
    text: bool,
    buf: BytesMut,
}

/// A WebSocket connection over `S`, an upgraded stream (the HTTP handshake is the caller's; see
/// [`super::handshake`]).
///
/// Reading and writing share one `&mut self` and are independent: `next` is cancel-safe (state
/// lives in `self`, so dropping it in a `select!` loses nothing), and so is `flush` (what was not
/// written stays queued).
pub struct WsConn<S> {
    io: S,
    role: Role,
    limits: Limits,
    /// Bytes read but not yet parsed; a message's payload is split off the front.
    rbuf: BytesMut,
    /// `rbuf` was grown past [`READ_CHUNK`] (for a large frame): shrink it at the next refill.
    rbuf_grown: bool,
    /// Frames queued for writing; `wbuf[wpos..]` is still unwritten.
    wbuf: Vec<u8>,
    wpos: usize,
    partial: Option<Partial>,
    /// A pong or close reply sits in `wbuf` and should go out without waiting for a `flush`.
    control_pending: bool,
    /// We have queued a close frame: nothing more may be queued.
    close_sent: bool,
    /// `next` has nothing more to give: after a close, EOF or an error.
    read_done: bool,
}

impl<S> WsConn<S> {
    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The underlying stream, mutably. Reading from or writing to it directly corrupts the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// Whether a close frame has been queued (ours, an echo, or after an error).
    pub fn is_close_sent(&self) -> bool {
        self.close_sent
    }

    /// Bytes queued but not yet written.
    pub fn pending_write(&self) -> usize {
        self.wbuf.len() - self.wpos
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsConn<S> {
    /// Wraps an upgraded stream. `already_read`: bytes the handshake read past its end (they are
    /// the start of the WebSocket stream and are parsed first).
    pub fn new(io: S, role: Role, limits: Limits, already_read: &[u8]) -> Self {
        let mut rbuf = BytesMut::with_capacity(already_read.len().max(READ_CHUNK));
        rbuf.extend_from_slice(already_read);
        WsConn {
            io,
            role,
            limits,
            rbuf_grown: already_read.len() > READ_CHUNK,
            rbuf,
            // Grows to the largest batch written (a media frame and its mark) and stays there.
            wbuf: Vec::new(),
            wpos: 0,
            partial: None,
            control_pending: false,
            close_sent: false,
            read_done: false,
        }
    }

    /// The next data message. Answers pings with pongs itself, skips pongs, assembles fragments.
    /// `None`: the stream ended (at a frame boundary, with or without a close), or the message
    /// after an [`Incoming::Close`] or an error was asked for.
    pub async fn next(&mut self) -> Option<Result<Incoming, WsError>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Poll form of [`WsConn::next`].
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, WsError>>> {
        if self.control_pending {
            // Best effort; a failure shows up on the next flush or read.
            let _ = self.poll_write_queued(cx);
        }
        loop {
            if self.read_done {
                return Poll::Ready(None);
            }
            match self.parse_buffered(cx) {
                Ok(Some(msg)) => return Poll::Ready(Some(Ok(msg))),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(self.fail(e, cx)))),
            }
            match self.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.read_done = true;
                    if self.rbuf.is_empty() && self.partial.is_none() {
                        return Poll::Ready(None);
                    }
                    let what = if self.rbuf.is_empty() {
                        "stream ended in the middle of a fragmented message"
                    } else {
                        "stream ended in the middle of a frame"
                    };
                    let eof = io::Error::new(io::ErrorKind::UnexpectedEof, what);
                    return Poll::Ready(Some(Err(WsError::Io(eof))));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    self.read_done = true;
                    return Poll::Ready(Some(Err(WsError::Io(e))));
                }
            }
        }
    }

    /// Frames `text` into the write buffer (masked, with a fresh random key, as a client).
    /// Nothing is written until [`WsConn::flush`] (or until `next` writes a pong or close reply,
    /// which carries out what is queued before it, in order). Fails with [`WsError::Closed`] once
    /// a close frame has been queued.
    pub fn queue_text(&mut self, text: &str) -> Result<(), WsError> {
        self.queue_data(OpCode::Text, text.as_bytes())
    }

    /// Frames the concatenation of `parts` as one text message, without building it first.
    pub fn queue_text_parts(&mut self, parts: &[&str]) -> Result<(), WsError> {
        if self.close_sent {
            return Err(WsError::Closed);
        }
        let len = parts.iter().map(|p| p.len()).sum();
        let mask = self.mask_key();
        self.reserve_frame(len);
        frame::write_header(&mut self.wbuf, true, OpCode::Text, mask, len);
        let start = self.wbuf.len();
        for part in parts {
            self.wbuf.extend_from_slice(part.as_bytes());
        }
        if let Some(key) = mask {
            frame::apply_mask(&mut self.wbuf[start..], key);
        }
        Ok(())
    }

    /// Frames `data` as a binary message; otherwise as [`WsConn::queue_text`].
    pub fn queue_binary(&mut self, data: &[u8]) -> Result<(), WsError> {
        self.queue_data(OpCode::Binary, data)
    }

    /// Writes everything queued, then flushes the stream (TLS streams need it). One write call
    /// when the socket takes it all. Cancel-safe: what was not written stays queued.
    pub async fn flush(&mut self) -> Result<(), WsError> {
        poll_fn(|cx| self.poll_write_queued(cx)).await?;
        Ok(())
    }

    /// [`WsConn::queue_text`] then [`WsConn::flush`].
    pub async fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        self.queue_text(text)?;
        self.flush().await
    }

    /// Sends a close frame with `code` and `reason` (cut to 123 bytes at a character boundary)
    /// and flushes. Only the first close frame goes out: if one was already queued (ours or the
    /// echo of the peer's), this just flushes. Keep calling [`WsConn::next`] to see the peer's
    /// close; later sends fail with [`WsError::Closed`].
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        if !self.close_sent {
            if !frame::is_valid_close_code(code) {
                return Err(WsError::InvalidCloseCode(code));
            }
            self.queue_close(Some((code, reason)));
        }
        self.flush().await
    }

    /// Flushes anything queued and shuts down the write side of the stream (TCP FIN, TLS
    /// close_notify). Call after the close handshake; dropping the connection also closes it.
    pub async fn shutdown(&mut self) -> Result<(), WsError> {
        self.flush().await?;
        poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx)).await?;
        Ok(())
    }

    fn queue_data(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), WsError> {
        if self.close_sent {
            return Err(WsError::Closed);
        }
        self.queue_frame(opcode, payload);
        Ok(())
    }

    /// Room in the write buffer for a frame of `len` payload bytes.
    ///
    /// The buffer lives as long as the connection and is reused for every batch, so a small one
    /// grows by what the batch needs (plus [`WRITE_SLACK`]) rather than doubling: a call's batches
    /// (a media frame and its mark) are all about one size, and doubling left each Twilio socket
    /// with ~2.4 KB for ~1.3 KB batches (heaptrack, issue 16). A buffer already holding more than
    /// [`READ_CHUNK`] (a backlog) grows by doubling, so queueing many frames stays linear.
    fn reserve_frame(&mut self, len: usize) {
        let need = frame::MAX_HEADER_LEN + len;
        if self.wbuf.capacity() - self.wbuf.len() >= need {
            return;
        }
        if self.wbuf.len() <= READ_CHUNK {
            self.wbuf.reserve_exact(need + WRITE_SLACK);
        } else {
            self.wbuf.reserve(need);
        }
    }

    /// Appends one complete frame to the write buffer, masking the copied payload in place.
    fn queue_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let mask = self.mask_key();
        self.reserve_frame(payload.len());
        frame::write_header(&mut self.wbuf, true, opcode, mask, payload.len());
        let start = self.wbuf.len();
        self.wbuf.extend_from_slice(payload);
        if let Some(key) = mask {
            frame::apply_mask(&mut self.wbuf[start..], key);
        }
    }

    /// A fresh random masking key for a client's frame (RFC 6455 §5.3), none for a server's.
    fn mask_key(&self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => Some(rand::random::<[u8; 4]>()),
            Role::Server => None,
        }
    }

    /// Queues a close frame (the only one we will send) and marks the connection closed for
    /// sending.
    fn queue_close(&mut self, status: Option<(u16, &str)>) {
        let mut payload = [0u8; frame::MAX_CONTROL_PAYLOAD];
        let len = match status {
            None => 0,
            Some((code, reason)) => {
                let reason = frame::truncate_reason(reason);
                payload[..2].copy_from_slice(&code.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
                2 + reason.len()
            }
        };
        self.queue_frame(OpCode::Close, &payload[..len]);
        self.close_sent = true;
        self.control_pending = true;
    }

    /// Writes `wbuf[wpos..]` until it is empty, then flushes the stream.
    fn poll_write_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.wpos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.wpos != 0 {
            self.wbuf.clear();
            self.wpos = 0;
            if self.wbuf.capacity() > WRITE_BUF_KEEP {
                self.wbuf.shrink_to(READ_CHUNK);
            }
        }
        self.control_pending = false;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Reads once into the read buffer's spare capacity (uninitialised: never zero-filled).
    /// `Ok(0)` is EOF.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.make_room();
        let spare = self.rbuf.spare_capacity_mut();
        let mut read_buf = ReadBuf::uninit(spare);
        let before = read_buf.filled().as_ptr();
        match Pin::new(&mut self.io).poll_read(cx, &mut read_buf) {
            Poll::Ready(Ok(())) => {}
            other => return other.map_ok(|()| 0),
        }
        // A reader may swap in its own `ReadBuf`; then "filled" says nothing about our memory.
        if read_buf.filled().as_ptr() != before {
            return Poll::Ready(Err(io::Error::other("reader replaced the read buffer")));
        }
        let n = read_buf.filled().len();
        // SAFETY: `poll_read` initialised the first `n` bytes of the spare capacity (the
        // `ReadBuf` contract; the pointer check above makes sure they are ours).
        unsafe { self.rbuf.advance_mut(n) };
        Poll::Ready(Ok(n))
    }

    /// Makes room to read into when the buffer runs low, keeping it at [`READ_CHUNK`] while the
    /// frames fit in that.
    ///
    /// `BytesMut::reserve` doubles the allocation whenever it cannot reuse it in place, and it can
    /// move the unread tail to the front only when the tail is shorter than what was read before
    /// it: a small event read just before part of an audio delta is enough, and the buffer would
    /// stay at twice [`READ_CHUNK`] for good, on both of a call's sockets (heaptrack, issue 16). So
    /// a tail that fits moves into a fresh buffer of [`READ_CHUNK`] instead (the old one is freed
    /// once the messages cut from it are dropped), and a buffer grown for a large frame is given
    /// back the same way at the first refill after it.
    fn make_room(&mut self) {
        let missing = self.missing_for_next_frame().min(MAX_RESERVE_STEP);
        let len = self.rbuf.len();
        let spare = self.rbuf.capacity() - len;
        if spare >= READ_CHUNK / 4 && spare >= missing {
            return;
        }
        if len + missing <= READ_CHUNK {
            if !self.rbuf_grown && self.rbuf.try_reclaim(READ_CHUNK - len) {
                return;
            }
            let mut fresh = BytesMut::with_capacity(READ_CHUNK);
            fresh.extend_from_slice(&self.rbuf);
            self.rbuf = fresh;
            self.rbuf_grown = false;
        } else {
            self.rbuf.reserve(missing.max(READ_CHUNK));
            self.rbuf_grown = true;
        }
    }

    /// How many more bytes the frame at the front of the buffer needs (0 when its header is not
    /// complete: then any read helps). Only called after `parse_buffered` has checked the header.
    fn missing_for_next_frame(&self) -> usize {
        match frame::parse_header(&self.rbuf) {
            Ok(Some((h, header_len))) => {
                // Within `max_frame` (checked by `parse_buffered`), so it fits in usize.
                let total = header_len.saturating_add(usize::try_from(h.len).unwrap_or(usize::MAX));
                total.saturating_sub(self.rbuf.len())
            }
            _ => 0,
        }
    }

    /// Handles every complete frame at the front of the buffer until one completes a data or
    /// close message. `Ok(None)`: more bytes are needed.
    fn parse_buffered(&mut self, cx: &mut Context<'_>) -> Result<Option<Incoming>, WsError> {
        loop {
            let (h, header_len) = match frame::parse_header(&self.rbuf) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return Ok(None),
                Err(e) => return Err(WsError::Protocol(e.as_str())),
            };
            let len = self.check_header(&h)?;
            if self.rbuf.len() - header_len < len {
                return Ok(None);
            }
            let _ = self.rbuf.split_to(header_len);
            let mut payload = self.rbuf.split_to(len);
            if let Some(key) = h.mask {
                frame::apply_mask(&mut payload, key);
            }
            if let Some(msg) = self.handle_frame(h, payload, cx)? {
                return Ok(Some(msg));
            }
        }
    }

    /// Role, sequencing and size checks that need the connection's state. Returns the payload
    /// length as usize.
    fn check_header(&self, h: &FrameHeader) -> Result<usize, WsError> {
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(WsError::Protocol("unmasked frame from client")),
            (Role::Client, true) => return Err(WsError::Protocol("masked frame from server")),
            _ => {}
        }
        match (h.opcode, &self.partial) {
            (OpCode::Continuation, None) => {
                return Err(WsError::Protocol(
                    "continuation frame without a started message",
                ))
            }
            (OpCode::Text | OpCode::Binary, Some(_)) => {
                return Err(WsError::Protocol(
                    "new data frame before the fragmented message ended",
                ))
            }
            _ => {}
        }
        let too_large = |what, len, limit| WsError::TooLarge { what, len, limit };
        let len = match usize::try_from(h.len) {
            Ok(len) if len <= self.limits.max_frame => len,
            _ => return Err(too_large("frame", h.len, self.limits.max_frame)),
        };
        if !h.opcode.is_control() {
            let so_far = self.partial.as_ref().map_or(0, |p| p.buf.len());
            let total = so_far.saturating_add(len);
            if total > self.limits.max_message {
                return Err(too_large("message", total as u64, self.limits.max_message));
            }
        }
        Ok(len)
    }

    /// Acts on one complete, unmasked frame; returns a message when one is complete.
    fn handle_frame(
        &mut self,
        h: FrameHeader,
        payload: BytesMut,
        cx: &mut Context<'_>,
    ) -> Result<Option<Incoming>, WsError> {
        match h.opcode {
            OpCode::Ping => {
                if !self.close_sent {
                    self.queue_frame(OpCode::Pong, &payload);
                    self.control_pending = true;
                    if let Poll::Ready(Err(e)) = self.poll_write_queued(cx) {
                        return Err(WsError::Io(e));
                    }
                }
                Ok(None)
            }
            OpCode::Pong => Ok(None),
            OpCode::Close => {
                let status =
                    frame::parse_close(&payload).map_err(|e| WsError::Protocol(e.as_str()))?;
                let status = status.map(|(code, reason)| (code, reason.to_owned()));
                if !self.close_sent {
                    // Echo the code (RFC 6455 §5.5.1); the reason is optional and left out.
                    self.queue_close(status.as_ref().map(|(code, _)| (*code, "")));
                }
                // The peer may already have gone: a failed echo must not hide its close.
                let _ = self.poll_write_queued(cx);
                self.read_done = true;
                Ok(Some(Incoming::Close(status)))
            }
            OpCode::Text | OpCode::Binary if h.fin => {
                finish(h.opcode == OpCode::Text, payload).map(Some)
            }
            OpCode::Text | OpCode::Binary => {
                self.partial = Some(Partial {
                    text: h.opcode == OpCode::Text,
                    buf: payload,
                });
                Ok(None)
            }
            OpCode::Continuation => {
                let Some(partial) = self.partial.as_mut() else {
                    // check_header refused this already.
                    return Err(WsError::Protocol(
                        "continuation frame without a started message",
                    ));
                };
                partial.buf.extend_from_slice(&payload);
                if !h.fin {
                    return Ok(None);
                }
                match self.partial.take() {
                    Some(p) => finish(p.text, p.buf).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// Ends reading after an error and queues the matching close frame (best effort, once).
    fn fail(&mut self, err: WsError, cx: &mut Context<'_>) -> WsError {
        self.read_done = true;
        self.partial = None;
        let code = match err {
            WsError::InvalidUtf8 => Some(1007),
            WsError::TooLarge { .. } => Some(1009),
            WsError::Protocol(_) => Some(1002),
            _ => None,
        };
        if let (Some(code), false) = (code, self.close_sent) {
            self.queue_close(Some((code, "")));
            let _ = self.poll_write_queued(cx);
        }
        err
    }
}

/// A complete data message from its assembled payload.
fn finish(text: bool, payload: BytesMut) -> Result<Incoming, WsError> {
    let bytes = payload.freeze();
    if text {
        TextBytes::new(bytes)
            .map(Incoming::Text)
            .map_err(|_| WsError::InvalidUtf8)
    } else {
        Ok(Incoming::Binary(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// A scripted stream: reads hand out `input` `chunk` bytes at a time (optionally returning
    /// `Pending` before each read, waking itself), then EOF or `Pending` forever; writes are
    /// collected, at most `write_chunk` bytes per call.
    struct Mock {
        input: Vec<u8>,
        pos: usize,
        chunk: usize,
        pend: bool,
        pended: bool,
        eof: bool,
        reads: usize,
        output: Vec<u8>,
        write_chunk: usize,
        writes: usize,
    }

    impl Mock {
        fn new(input: Vec<u8>) -> Self {
            Mock {
                input,
                pos: 0,
                chunk: usize::MAX,
                pend: false,
                pended: false,
                eof: true,
                reads: 0,
                output: Vec::new(),
                write_chunk: usize::MAX,
                writes: 0,
            }
        }
        fn trickle(mut self) -> Self {
            self.chunk = 1;
            self.pend = true;
            self
        }
    }

    impl AsyncRead for Mock {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = &mut *self;
            if this.pend && !this.pended {
                this.pended = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.pended = false;
            let n = this
                .chunk
                .min(this.input.len() - this.pos)
                .min(buf.remaining());
            if n == 0 && !this.eof {
                return Poll::Pending;
            }
            buf.put_slice(&this.input[this.pos..this.pos + n]);
            this.pos += n;
            this.reads += 1;
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Mock {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = &mut *self;
            if this.write_chunk != usize::MAX && !this.pended {
                // Partial writes with a Pending before each, to exercise the resume path.
                this.pended = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.pended = false;
            let n = buf.len().min(this.write_chunk);
            this.output.extend_from_slice(&buf[..n]);
            this.writes += 1;
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    const KEY: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

    /// A frame built by hand (independently of `frame::write_header`): `b0` is FIN|RSV|opcode.
    fn raw_frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let m = if mask.is_some() { 0x80 } else { 0 };
        let mut out = vec![b0];
        let len = payload.len();
        if len < 126 {
            out.push(m | len as u8);
        } else if len <= 0xFFFF {
            out.push(m | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(m | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        match mask {
            Some(k) => {
                out.extend_from_slice(&k);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    /// A frame as a client sends it (masked).
    fn cf(b0: u8, payload: &[u8]) -> Vec<u8> {
        raw_frame(b0, payload, Some(KEY))
    }

    fn text(s: &str) -> Incoming {
        Incoming::Text(TextBytes::new(Bytes::copy_from_slice(s.as_bytes())).unwrap())
    }

    async fn drain(conn: &mut WsConn<Mock>) -> Vec<Result<Incoming, WsError>> {
        let mut out = Vec::new();
        while let Some(item) = conn.next().await {
            out.push(item);
            assert!(out.len() < 1000, "next() never ends");
        }
        out
    }

    fn ok_all(items: Vec<Result<Incoming, WsError>>) -> Vec<Incoming> {
        items.into_iter().map(|r| r.unwrap()).collect()
    }

    /// Runs `input` into a fresh connection and returns its only item, which must be an error,
    /// and what the connection wrote.
    async fn refused(role: Role, limits: Limits, input: Vec<u8>) -> (WsError, Vec<u8>) {
        let mut conn = WsConn::new(Mock::new(input), role, limits, &[]);
        let mut items = drain(&mut conn).await;
        assert_eq!(items.len(), 1, "{items:?}");
        let err = items.remove(0).unwrap_err();
        assert!(conn.queue_text("x").is_err() || !matches!(err, WsError::Protocol(_)));
        (err, conn.io.output)
    }

    fn close_frame_server(code: u16) -> Vec<u8> {
        raw_frame(0x88, &code.to_be_bytes(), None)
    }

    fn assert_protocol(err: &WsError, needle: &str) {
        match err {
            WsError::Protocol(msg) => assert!(msg.contains(needle), "{msg:?} lacks {needle:?}"),
            other => panic!("expected a protocol error with {needle:?}, got {other:?}"),
        }
    }

    /// A mixed stream: text, ping, binary, fragmented text with a ping and a pong in between,
    /// an empty text, then a close.
    fn mixed_input() -> (Vec<u8>, Vec<Incoming>) {
        let mut input = Vec::new();
        input.extend(cf(0x81, b"hello"));
        input.extend(cf(0x89, b"ping-1"));
        input.extend(cf(0x82, &[0, 1, 2, 255]));
        input.extend(cf(0x01, "fragmented é".as_bytes()));
        input.extend(cf(0x89, b""));
        input.extend(cf(0x00, " in ".as_bytes()));
        input.extend(cf(0x8A, b"unsolicited pong"));
        input.extend(cf(0x80, "three parts".as_bytes()));
        input.extend(cf(0x81, b""));
        let big = "x".repeat(70_000);
        input.extend(cf(0x81, big.as_bytes()));
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        input.extend(cf(0x88, &close));
        let expected = vec![
            text("hello"),
            Incoming::Binary(Bytes::from_static(&[0, 1, 2, 255])),
            text("fragmented é in three parts"),
            text(""),
            text(&big),
            Incoming::Close(Some((1000, "bye".to_owned()))),
        ];
        (input, expected)
    }

    fn expected_mixed_output() -> Vec<u8> {
        let mut out = raw_frame(0x8A, b"ping-1", None);
        out.extend(raw_frame(0x8A, b"", None));
        out.extend(close_frame_server(1000));
        out
    }

    #[tokio::test]
    async fn several_frames_in_one_read_all_come_out() {
        let (input, expected) = mixed_input();
        let mut conn = WsConn::new(Mock::new(input), Role::Server, Limits::default(), &[]);
        assert_eq!(ok_all(drain(&mut conn).await), expected);
        // One read brought everything (the reader's chunk is unlimited and the buffer grows to
        // the 70 KB frame), one more would be needed only for EOF, which the close made moot.
        assert!(conn.io.reads <= 3, "{} reads", conn.io.reads);
        assert_eq!(conn.io.output, expected_mixed_output());
        assert!(matches!(conn.queue_text("late"), Err(WsError::Closed)));
        // close() after the echo only flushes: no second close frame.
        conn.close(1000, "").await.unwrap();
        assert_eq!(conn.io.output, expected_mixed_output());
    }

    #[tokio::test]
    async fn byte_at_a_time_gives_the_same_messages() {
        let (input, expected) = mixed_input();
        let n = input.len();
        let mut conn = WsConn::new(
            Mock::new(input).trickle(),
            Role::Server,
            Limits::default(),
            &[],
        );
        assert_eq!(ok_all(drain(&mut conn).await), expected);
        assert_eq!(conn.io.reads, n, "one byte per read");
        assert_eq!(conn.io.output, expected_mixed_output());
    }

    #[tokio::test]
    async fn already_read_bytes_come_first() {
        let (input, expected) = mixed_input();
        for split in [0, 1, 7, 11, 30, input.len() - 3, input.len()] {
            let mut conn = WsConn::new(
                Mock::new(input[split..].to_vec()),
                Role::Server,
                Limits::default(),
                &input[..split],
            );
            assert_eq!(ok_all(drain(&mut conn).await), expected, "split at {split}");
        }
    }

    #[tokio::test]
    async fn eof_at_frame_boundary_is_none_without_close() {
        let mut conn = WsConn::new(
            Mock::new(cf(0x81, b"a")),
            Role::Server,
            Limits::default(),
            &[],
        );
        assert_eq!(ok_all(drain(&mut conn).await), vec![text("a")]);
        assert!(conn.io.output.is_empty());
    }

    #[tokio::test]
    async fn empty_close_is_echoed_empty() {
        let mut conn = WsConn::new(
            Mock::new(cf(0x88, b"")),
            Role::Server,
            Limits::default(),
            &[],
        );
        assert_eq!(ok_all(drain(&mut conn).await), vec![Incoming::Close(None)]);
        assert_eq!(conn.io.output, raw_frame(0x88, b"", None));
    }

    #[tokio::test]
    async fn client_receives_unmasked_and_masks_what_it_sends() {
        let input = raw_frame(0x81, b"from server", None);
        let mut conn = WsConn::new(Mock::new(input), Role::Client, Limits::default(), &[]);
        assert_eq!(ok_all(drain(&mut conn).await), vec![text("from server")]);

        let long = "y".repeat(300);
        conn.queue_text("first").unwrap();
        conn.queue_text(&long).unwrap();
        conn.queue_binary(&[9; 3]).unwrap();
        conn.queue_text_parts(&["pa", "", "rts ", &long]).unwrap();
        assert_eq!(conn.io.writes, 0, "queue does not write");
        conn.flush().await.unwrap();
        assert_eq!(conn.io.writes, 1, "one write for everything queued");

        let mut out = BytesMut::from(&conn.io.output[..]);
        let mut keys = Vec::new();
        let mut got = Vec::new();
        while !out.is_empty() {
            let (h, n) = frame::parse_header(&out).unwrap().unwrap();
            let key = h.mask.expect("client frames are masked");
            keys.push(key);
            let _ = out.split_to(n);
            let mut p = out.split_to(h.len as usize);
            frame::apply_mask(&mut p, key);
            got.push((h.opcode, p.to_vec()));
        }
        assert_eq!(
            got,
            vec![
                (OpCode::Text, b"first".to_vec()),
                (OpCode::Text, long.clone().into_bytes()),
                (OpCode::Binary, vec![9; 3]),
                (OpCode::Text, format!("parts {long}").into_bytes()),
            ]
        );
        assert!(
            keys[0] != keys[1] || keys[1] != keys[2],
            "a fresh key per frame"
        );
    }

    #[tokio::test]
    async fn server_sends_unmasked_and_survives_partial_writes() {
        let mut mock = Mock::new(Vec::new());
        mock.write_chunk = 3;
        let mut conn = WsConn::new(mock, Role::Server, Limits::default(), &[]);
        conn.send_text("partial writes").await.unwrap();
        conn.close(4000, "done").await.unwrap();
        let mut expected = raw_frame(0x81, b"partial writes", None);
        let mut close = 4000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"done");
        expected.extend(raw_frame(0x88, &close, None));
        assert_eq!(conn.io.output, expected);
        assert_eq!(conn.pending_write(), 0);
        assert!(matches!(
            conn.send_text("after").await,
            Err(WsError::Closed)
        ));
        assert!(matches!(conn.queue_text("after"), Err(WsError::Closed)));
    }

    #[tokio::test]
    async fn close_refuses_invalid_codes_and_cuts_long_reasons() {
        let mut conn = WsConn::new(Mock::new(Vec::new()), Role::Server, Limits::default(), &[]);
        assert!(matches!(
            conn.close(1005, "").await,
            Err(WsError::InvalidCloseCode(1005))
        ));
        assert!(!conn.is_close_sent());
        conn.close(1000, &"é".repeat(100)).await.unwrap();
        assert_eq!(conn.io.output.len(), 2 + 2 + 122);
    }

    #[tokio::test]
    async fn pong_is_written_while_reading_without_a_flush() {
        // The reader then stalls (no EOF): the pong must already be out.
        let mut mock = Mock::new(cf(0x89, b"are you there"));
        mock.eof = false;
        let mut conn = WsConn::new(mock, Role::Server, Limits::default(), &[]);
        let r = tokio::time::timeout(std::time::Duration::from_millis(50), conn.next()).await;
        assert!(r.is_err(), "no data message yet");
        assert_eq!(conn.io.output, raw_frame(0x8A, b"are you there", None));
    }

    #[tokio::test]
    async fn refusals_of_malformed_frames() {
        let l = Limits::default();
        let (e, out) = refused(Role::Server, l, raw_frame(0x81, b"hi", None)).await;
        assert_protocol(&e, "unmasked frame from client");
        assert_eq!(
            out,
            close_frame_server(1002),
            "1002 close sent on a protocol error"
        );

        let (e, out) = refused(Role::Client, l, raw_frame(0x81, b"hi", Some(KEY))).await;
        assert_protocol(&e, "masked frame from server");
        let (h, _) = frame::parse_header(&out).unwrap().unwrap();
        assert_eq!(
            (h.opcode, h.mask.is_some()),
            (OpCode::Close, true),
            "client's close is masked"
        );

        for b0 in [0xC1, 0xA1, 0x91] {
            let (e, _) = refused(Role::Server, l, cf(b0, b"x")).await;
            assert_protocol(&e, "reserved bits");
        }
        for op in [0x3, 0x7, 0xB, 0xF] {
            let (e, _) = refused(Role::Server, l, cf(0x80 | op, b"")).await;
            assert_protocol(&e, "unknown opcode");
        }
        let (e, _) = refused(Role::Server, l, cf(0x89, &[0; 126])).await;
        assert_protocol(&e, "over 125");
        let (e, _) = refused(Role::Server, l, cf(0x09, b"")).await;
        assert_protocol(&e, "fragmented control");
        let (e, _) = refused(Role::Server, l, cf(0x80, b"x")).await;
        assert_protocol(&e, "continuation frame without");
        let mut two_starts = cf(0x01, b"a");
        two_starts.extend(cf(0x81, b"b"));
        let (e, _) = refused(Role::Server, l, two_starts).await;
        assert_protocol(&e, "before the fragmented message ended");

        let mut msb = vec![0x82, 0x80 | 127];
        msb.extend_from_slice(&(1u64 << 63).to_be_bytes());
        msb.extend_from_slice(&KEY);
        let (e, _) = refused(Role::Server, l, msb).await;
        assert_protocol(&e, "most significant bit");

        let (e, _) = refused(Role::Server, l, cf(0x88, &[0x03])).await;
        assert_protocol(&e, "1-byte");
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
            let (e, _) = refused(Role::Server, l, cf(0x88, &code.to_be_bytes())).await;
            assert_protocol(&e, "invalid status code");
        }
        let (e, _) = refused(Role::Server, l, cf(0x88, &[0x03, 0xE8, 0xC3])).await;
        assert_protocol(&e, "reason is not valid UTF-8");
    }

    #[tokio::test]
    async fn refusals_of_bad_utf8() {
        let l = Limits::default();
        let (e, out) = refused(Role::Server, l, cf(0x81, &[b'a', 0xFF, b'b'])).await;
        assert!(matches!(e, WsError::InvalidUtf8), "{e:?}");
        assert_eq!(out, close_frame_server(1007));

        // A character split across fragments is fine ...
        let mut split = cf(0x01, &[b'a', 0xC3]);
        split.extend(cf(0x80, &[0xA9]));
        let mut conn = WsConn::new(Mock::new(split), Role::Server, l, &[]);
        assert_eq!(ok_all(drain(&mut conn).await), vec![text("aé")]);
        // ... a broken one is not.
        let mut broken = cf(0x01, &[b'a', 0xC3]);
        broken.extend(cf(0x80, b"("));
        let (e, _) = refused(Role::Server, l, broken).await;
        assert!(matches!(e, WsError::InvalidUtf8), "{e:?}");
        // Binary is not checked.
        let mut conn = WsConn::new(Mock::new(cf(0x82, &[0xFF])), Role::Server, l, &[]);
        assert_eq!(
            ok_all(drain(&mut conn).await),
            vec![Incoming::Binary(Bytes::from_static(&[0xFF]))]
        );
    }

    #[tokio::test]
    async fn oversize_frames_and_messages_refused_before_buffering() {
        let l = Limits {
            max_message: 10,
            max_frame: 8,
        };
        // Only the header of a huge frame arrives, then the peer stalls: refused at once, and
        // nothing near its size was reserved.
        for len in [9u64, 1 << 40, (1 << 63) - 1] {
            let mut header = vec![0x82, 0x80 | 127];
            header.extend_from_slice(&len.to_be_bytes());
            header.extend_from_slice(&KEY);
            let mut mock = Mock::new(header);
            mock.eof = false;
            let mut conn = WsConn::new(mock, Role::Server, l, &[]);
            let r = tokio::time::timeout(std::time::Duration::from_secs(5), conn.next()).await;
            match r.unwrap() {
                Some(Err(WsError::TooLarge {
                    what: "frame",
                    len: got,
                    limit: 8,
                })) => assert_eq!(got, len),
                other => panic!("{other:?}"),
            }
            assert!(
                conn.rbuf.capacity() <= READ_CHUNK,
                "{}",
                conn.rbuf.capacity()
            );
            assert_eq!(conn.io.output, close_frame_server(1009));
        }
        // Fragments that are each fine but add up to too much.
        let mut frags = cf(0x01, b"123456");
        frags.extend(cf(0x80, b"78901"));
        let (e, _) = refused(Role::Server, l, frags).await;
        assert!(
            matches!(
                e,
                WsError::TooLarge {
                    what: "message",
                    len: 11,
                    limit: 10
                }
            ),
            "{e:?}"
        );
        // Exactly at the limits is fine; control frames do not count against the message.
        let mut at_limit = cf(0x01, b"12345678");
        at_limit.extend(cf(0x89, b"ping5"));
        at_limit.extend(cf(0x80, b"90"));
        let mut conn = WsConn::new(Mock::new(at_limit), Role::Server, l, &[]);
        assert_eq!(ok_all(drain(&mut conn).await), vec![text("1234567890")]);
    }

    /// A call's traffic: small events and ~1.3 KB audio deltas, read in pieces that split frames.
    fn mixed_frames(n: usize) -> (Vec<u8>, Vec<String>) {
        let (mut input, mut sent) = (Vec::new(), Vec::new());
        for i in 0..n {
            let body = match i % 3 {
                0 => "e".repeat(180 + i % 50),
                _ => "d".repeat(1300 + i % 40),
            };
            input.extend(cf(0x81, body.as_bytes()));
            sent.push(body);
        }
        (input, sent)
    }

    #[tokio::test]
    async fn the_read_buffer_stays_at_one_chunk_for_a_calls_frames() {
        let (input, sent) = mixed_frames(300);
        let mut mock = Mock::new(input);
        mock.chunk = 700;
        let mut conn = WsConn::new(mock, Role::Server, Limits::default(), &[]);
        let mut got = 0;
        while let Some(msg) = conn.next().await {
            assert_eq!(msg.unwrap(), text(&sent[got]));
            got += 1;
            // Past one chunk only if the allocation grew (`capacity` counts from the read point).
            assert!(
                conn.rbuf.capacity() <= READ_CHUNK,
                "after message {got}: {}",
                conn.rbuf.capacity()
            );
        }
        assert_eq!(got, sent.len());
    }

    #[tokio::test]
    async fn the_write_buffer_grows_to_a_batch_not_to_twice_it() {
        let mut mock = Mock::new(Vec::new());
        mock.eof = false;
        let mut conn = WsConn::new(mock, Role::Server, Limits::default(), &[]);
        let media = "m".repeat(1100);
        for i in 0..50 {
            let mark = format!("{{\"mark\":\"{i}\"}}");
            conn.queue_text_parts(&[&media]).unwrap();
            conn.queue_text_parts(&[&mark]).unwrap();
            conn.flush().await.unwrap();
            let batch = 1100 + mark.len() + 2 * frame::MAX_HEADER_LEN;
            assert!(
                conn.wbuf.capacity() <= batch + 2 * WRITE_SLACK,
                "batch {i}: {} for {batch}",
                conn.wbuf.capacity()
            );
        }
        // A backlog of frames still queues (doubling past a chunk) and goes out whole, in order.
        for i in 0..2000 {
            conn.queue_text(&format!("frame {i}")).unwrap();
        }
        conn.flush().await.unwrap();
        let out = std::mem::take(&mut conn.io.output);
        let mut read_back = WsConn::new(Mock::new(out), Role::Client, Limits::default(), &[]);
        for _ in 0..50 {
            assert!(matches!(read_back.next().await, Some(Ok(_))));
            assert!(matches!(read_back.next().await, Some(Ok(_))));
        }
        for i in 0..2000 {
            assert_eq!(
                read_back.next().await.unwrap().unwrap(),
                text(&format!("frame {i}"))
            );
        }
    }

    #[tokio::test]
    async fn a_buffer_grown_for_a_large_frame_is_given_back() {
        let big = "b".repeat(6000);
        let mut input = cf(0x81, big.as_bytes());
        let (rest, sent) = mixed_frames(30);
        input.extend(rest);
        let mut mock = Mock::new(input);
        mock.chunk = 700;
        let mut conn = WsConn::new(mock, Role::Server, Limits::default(), &[]);
        assert_eq!(conn.next().await.unwrap().unwrap(), text(&big));
        assert!(conn.rbuf_grown);
        for body in &sent {
            assert_eq!(conn.next().await.unwrap().unwrap(), text(body));
        }
        assert!(!conn.rbuf_grown);
        assert!(
            conn.rbuf.capacity() <= READ_CHUNK,
            "{}",
            conn.rbuf.capacity()
        );
        assert!(conn.next().await.is_none());
    }

    #[tokio::test]
    async fn large_frame_grows_the_buffer_as_bytes_arrive() {
        // A 16 MiB frame announced within limits, with only part of it sent: the buffer stays
        // near what actually arrived.
        let len = 16u64 << 20;
        let mut input = vec![0x82, 0x80 | 127];
        input.extend_from_slice(&len.to_be_bytes());
        input.extend_from_slice(&KEY);
        input.extend_from_slice(&[0; 1000]);
        let mut mock = Mock::new(input);
        mock.eof = false;
        let mut conn = WsConn::new(mock, Role::Server, Limits::default(), &[]);
        let r = tokio::time::timeout(std::time::Duration::from_millis(50), conn.next()).await;
        assert!(r.is_err());
        assert!(
            conn.rbuf.capacity() <= 2 * MAX_RESERVE_STEP,
            "{}",
            conn.rbuf.capacity()
        );
    }

    #[tokio::test]
    async fn eof_mid_frame_or_message_is_an_error() {
        let whole = cf(0x81, b"hello");
        for cut in 1..whole.len() {
            let mut conn = WsConn::new(
                Mock::new(whole[..cut].to_vec()),
                Role::Server,
                Limits::default(),
                &[],
            );
            let items = drain(&mut conn).await;
            assert_eq!(items.len(), 1, "cut {cut}");
            match &items[0] {
                Err(WsError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        let mut conn = WsConn::new(
            Mock::new(cf(0x01, b"half")),
            Role::Server,
            Limits::default(),
            &[],
        );
        let items = drain(&mut conn).await;
        assert!(
            matches!(&items[..], [Err(WsError::Io(e))] if e.kind() == io::ErrorKind::UnexpectedEof)
        );
    }

    /// Run with `cargo test --release -- --ignored --nocapture micro_bench`.
    #[tokio::test]
    #[ignore]
    async fn micro_bench() {
        const N: usize = 1_000_000;
        let payload = "a".repeat(300);
        let one = cf(0x81, payload.as_bytes());
        // Parse + unmask + UTF-8 check, frames fed from `already_read` in batches of 1000.
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
        let start = std::time::Instant::now();
        let mut n = 0;
        for _ in 0..N / 1000 {
            let mut conn = WsConn::new(
                Mock::new(Vec::new()),
                Role::Server,
                Limits::default(),
                &batch,
            );
            while let Some(Ok(Incoming::Text(t))) = conn.next().await {
                n += t.len();
            }
        }
        let per = start.elapsed().as_nanos() as f64 / N as f64;
        println!("read 300-byte masked text: {per:.1} ns/message ({n} bytes)");

        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut conn = WsConn::new(Mock::new(Vec::new()), Role::Client, Limits::default(), &[]);
        let start = std::time::Instant::now();
        for i in 0..N {
            conn.queue_text(&payload).unwrap();
            if i % 1000 == 999 {
                conn.io.output.clear();
                assert!(conn.poll_write_queued(&mut cx).is_ready());
            }
        }
        let per = start.elapsed().as_nanos() as f64 / N as f64;
        println!("queue_text 300 bytes as client (masked): {per:.1} ns/message");
    }
}
