//! The HTTP/1 connection under actix-http, where userd makes the answers the library
//! writes on its own say what docs/api.md says.
//!
//! actix-http answers before any route runs when a request cannot be served: 400 for an
//! unparsable request or one with both `Content-Length` and `Transfer-Encoding` (a
//! request-smuggling shape, RFC 9112 §6.3; it then closes the connection, so nothing
//! behind the request is read), 408 for a client too slow to send its request head, 431
//! for a head over its 128 KiB buffer or 96 headers. Those answers carry no body. They are
//! rewritten here, on their way to the socket, into the `google.rpc.Status` JSON of
//! docs/api.md, with `AMBIGUOUS_FRAMING` as the reason when the connection carried a
//! request head with both framing headers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::status_json;

/// Where the writer is in the stream of responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outgoing {
    /// The next byte written starts a response.
    AtHead,
    /// This many bytes of the current response (head and body) are still to come.
    Within(u64),
    /// A response of unknown length went by (chunked): stop looking.
    Opaque,
}

/// A socket with the behaviour described in the module documentation.
pub struct GuardedStream<S> {
    inner: S,
    /// A request head read from this connection carried both `Content-Length` and
    /// `Transfer-Encoding`.
    conflicting_framing_read: bool,
    outgoing: Outgoing,
    /// A rewritten response still to be written before anything else.
    pending: Vec<u8>,
    pending_from: usize,
}

impl<S> GuardedStream<S> {
    pub fn new(inner: S) -> Self {
        GuardedStream {
            inner,
            conflicting_framing_read: false,
            outgoing: Outgoing::AtHead,
            pending: Vec::new(),
            pending_from: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        // A head split across two reads is missed; its answer is then MALFORMED_REQUEST,
        // still a 400 on a closed connection.
        if !this.conflicting_framing_read && carries_conflicting_framing(&buf.filled()[before..]) {
            this.conflicting_framing_read = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> GuardedStream<S> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_from < self.pending.len() {
            let written = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.pending_from..])
            )?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending_from += written;
        }
        self.pending.clear();
        self.pending_from = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if this.outgoing == Outgoing::AtHead {
            match inspect_head(buf, this.conflicting_framing_read) {
                Head::Bare {
                    head_len,
                    rewritten,
                } => {
                    this.pending = rewritten;
                    // Started now so the socket's waker is registered; the rest goes out
                    // before the next write, or on flush.
                    let _ = this.poll_pending(cx)?;
                    return Poll::Ready(Ok(head_len));
                }
                Head::Sized(total) => this.outgoing = Outgoing::Within(total),
                Head::Unknown => this.outgoing = Outgoing::Opaque,
            }
        }
        let allowed = match this.outgoing {
            Outgoing::Within(left) => usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len())),
            _ => buf.len(),
        };
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]))?;
        if let Outgoing::Within(left) = this.outgoing {
            let left = left - written as u64;
            this.outgoing = if left == 0 {
                Outgoing::AtHead
            } else {
                Outgoing::Within(left)
            };
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

enum Head {
    /// An error answer with no body, written by actix-http itself: its head's length, and
    /// the answer to write instead.
    Bare { head_len: usize, rewritten: Vec<u8> },
    /// A response of this many bytes, head and body.
    Sized(u64),
    /// Not a response head userd can read whole here, or one of unknown length.
    Unknown,
}

const HEAD_END: &[u8] = b"\r\n\r\n";

/// Whether `bytes` hold a header block with both `Content-Length` and
/// `Transfer-Encoding`.
fn carries_conflicting_framing(bytes: &[u8]) -> bool {
    let is = |line: &[u8], name: &str| {
        line.len() > name.len()
            && line[name.len()] == b':'
            && line[..name.len()].eq_ignore_ascii_case(name.as_bytes())
    };
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .fold((false, false, false), |(length, encoding, found), line| {
            if line.is_empty() {
                (false, false, found)
            } else {
                let length = length || is(line, "content-length");
                let encoding = encoding || is(line, "transfer-encoding");
                (length, encoding, found || (length && encoding))
            }
        })
        .2
}

fn inspect_head(buf: &[u8], conflicting_framing_read: bool) -> Head {
    let Some(end) = buf
        .windows(HEAD_END.len())
        .position(|w| w == HEAD_END)
        .map(|i| i + HEAD_END.len())
    else {
        return Head::Unknown;
    };
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Head::Unknown;
    };
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(_version), Some(status)) = (parts.next(), parts.next()) else {
        return Head::Unknown;
    };
    let Ok(status) = status.parse::<u16>() else {
        return Head::Unknown;
    };
    let mut length = None;
    let mut others = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Head::Unknown;
        };
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Head::Unknown;
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<u64>().ok();
        } else if !name.eq_ignore_ascii_case("content-type") {
            others.push(line);
        }
    }
    let Some(length) = length else {
        return Head::Unknown;
    };
    // userd's own error answers always carry a JSON body, so an empty error answer is
    // one actix-http made.
    if status >= 400 && length == 0 {
        let body = bare_answer_body(status, conflicting_framing_read);
        let mut rewritten = format!(
            "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for line in others {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
        rewritten.push_str("\r\n");
        rewritten.push_str(&body);
        return Head::Bare {
            head_len: end,
            rewritten: rewritten.into_bytes(),
        };
    }
    Head::Sized(end as u64 + length)
}

/// The `google.rpc.Status` of an answer actix-http made on its own.
fn bare_answer_body(status: u16, conflicting_framing_read: bool) -> String {
    use userd_ports::ErrorKind;
    let (kind, reason, message) = match status {
        400 if conflicting_framing_read => (
            ErrorKind::InvalidArgument,
            "AMBIGUOUS_FRAMING",
            "a request may not carry both Content-Length and Transfer-Encoding; \
             the connection is closed",
        ),
        408 => (
            ErrorKind::DeadlineExceeded,
            "REQUEST_TIMEOUT",
            "the request head did not arrive in time",
        ),
        431 => (
            ErrorKind::InvalidArgument,
            "REQUEST_HEADER_TOO_LARGE",
            "the request head is too large (at most 96 headers and 128 KiB)",
        ),
        400..=499 => (
            ErrorKind::InvalidArgument,
            "MALFORMED_REQUEST",
            "the request is not valid HTTP/1.1",
        ),
        _ => (ErrorKind::Internal, "INTERNAL", "internal error"),
    };
    status_json(kind, reason, message, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_error_answers_become_status_json() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
                     content-length: 0\r\nconnection: close\r\ndate: x\r\n\r\n";
        let Head::Bare {
            head_len,
            rewritten,
        } = inspect_head(head, false)
        else {
            panic!("not rewritten");
        };
        assert_eq!(head_len, head.len());
        let text = String::from_utf8(rewritten).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let status: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(status["code"], 3);
        assert_eq!(status["details"][0]["reason"], "REQUEST_HEADER_TOO_LARGE");
    }

    #[test]
    fn answers_with_bodies_pass_through_and_are_measured() {
        let response = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
        assert!(
            matches!(inspect_head(response, false), Head::Sized(n) if n == response.len() as u64)
        );
        assert!(matches!(
            inspect_head(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                false
            ),
            Head::Unknown
        ));
        assert!(matches!(
            inspect_head(b"HTTP/1.1 200 OK\r\n", false),
            Head::Unknown
        ));
        assert!(matches!(
            inspect_head(
                b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
                false
            ),
            Head::Sized(_)
        ));
    }

    #[test]
    fn conflicting_framing_is_seen_only_within_one_header_block() {
        let both = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\
                     Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert!(carries_conflicting_framing(both));
        let apart = b"POST /x HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}\
                      POST /y HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(!carries_conflicting_framing(apart));
        assert!(!carries_conflicting_framing(
            b"GET / HTTP/1.1\r\nX-Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        let head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
        let Head::Bare { rewritten, .. } = inspect_head(head, true) else {
            panic!("not rewritten");
        };
        assert!(
            String::from_utf8(rewritten)
                .unwrap()
                .contains("AMBIGUOUS_FRAMING")
        );
    }
}
