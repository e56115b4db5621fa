//! The `grpc-websockets` wire format: what each WebSocket message may hold, and how to read and
//! write it. Everything here is pure (bytes in, values out), so both halves share it and it can be
//! fuzzed on its own.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Flag byte of a client message carrying gRPC data.
pub const CLIENT_DATA: u8 = 0x00;
/// The whole client message that ends the client's sending side.
pub const CLIENT_END_OF_STREAM: u8 = 0x01;
/// Flag of a gRPC-Web frame that holds a header block (response headers or trailers).
pub const HEADER_FRAME: u8 = 0x80;
/// Length of a gRPC frame prefix: a flag byte and a big-endian u32 length.
pub const FRAME_PREFIX: usize = 5;
/// The largest header block accepted, in bytes.
pub const MAX_HEADER_BLOCK: usize = 16 * 1024;

/// Why a message does not follow the protocol. Each becomes the gRPC status that ends the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("empty message")]
    Empty,
    #[error("header block over {MAX_HEADER_BLOCK} bytes")]
    HeaderBlockTooLarge,
    #[error("malformed header line {line}: {reason}")]
    BadHeader { line: usize, reason: &'static str },
    #[error("unknown message flag 0x{0:02x}")]
    UnknownFlag(u8),
    #[error("truncated gRPC frame: {0}")]
    Truncated(&'static str),
    #[error("gRPC message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("end-of-stream message with {0} extra bytes")]
    EndOfStreamWithData(usize),
}

/// A message from the client, after the header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// One or more complete gRPC frames (prefix included), ready for the request body.
    Data(Bytes),
    /// The client has sent its last message.
    EndOfStream,
}

/// Reads a client message (any message after the header block). Each gRPC frame in it must be
/// complete and no larger than `max_message` bytes.
pub fn parse_client_message(
    message: &[u8],
    max_message: usize,
) -> Result<ClientMessage, ProtocolError> {
    let (&flag, rest) = message.split_first().ok_or(ProtocolError::Empty)?;
    match flag {
        CLIENT_DATA => {
            check_frames(rest, max_message)?;
            Ok(ClientMessage::Data(Bytes::copy_from_slice(rest)))
        }
        CLIENT_END_OF_STREAM if rest.is_empty() => Ok(ClientMessage::EndOfStream),
        CLIENT_END_OF_STREAM => Err(ProtocolError::EndOfStreamWithData(rest.len())),
        other => Err(ProtocolError::UnknownFlag(other)),
    }
}

/// Checks that `bytes` is a sequence of complete gRPC data frames, each within `max_message`.
fn check_frames(mut bytes: &[u8], max_message: usize) -> Result<(), ProtocolError> {
    if bytes.is_empty() {
        return Err(ProtocolError::Truncated("no frame after the data flag"));
    }
    while !bytes.is_empty() {
        if bytes.len() < FRAME_PREFIX {
            return Err(ProtocolError::Truncated(
                "frame prefix shorter than 5 bytes",
            ));
        }
        let flag = bytes[0];
        if flag & HEADER_FRAME != 0 {
            return Err(ProtocolError::UnknownFlag(flag));
        }
        let size = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if size > max_message {
            return Err(ProtocolError::TooLarge {
                size,
                limit: max_message,
            });
        }
        let end = FRAME_PREFIX + size;
        if bytes.len() < end {
            return Err(ProtocolError::Truncated(
                "length prefix larger than the message",
            ));
        }
        bytes = &bytes[end..];
    }
    Ok(())
}

/// Reads a header block: `name: value` lines separated by CRLF (a bare LF is accepted too).
/// Names are lower-cased; a repeated name keeps every value.
pub fn parse_header_block(block: &[u8]) -> Result<HeaderMap, ProtocolError> {
    if block.len() > MAX_HEADER_BLOCK {
        return Err(ProtocolError::HeaderBlockTooLarge);
    }
    let mut headers = HeaderMap::new();
    for (index, line) in block.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let bad = |reason| ProtocolError::BadHeader {
            line: index + 1,
            reason,
        };
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad("no colon"))?;
        let name = HeaderName::from_bytes(line[..colon].trim_ascii())
            .map_err(|_| bad("invalid header name"))?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| bad("invalid header value"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Writes a header block as `name: value\r\n` lines.
pub fn encode_header_block(headers: &HeaderMap) -> BytesMut {
    let mut block = BytesMut::new();
    for (name, value) in headers {
        block.put_slice(name.as_str().as_bytes());
        block.put_slice(b": ");
        block.put_slice(value.as_bytes());
        block.put_slice(b"\r\n");
    }
    block
}

/// A header frame: the `0x80` flag, the block's length, the block.
pub fn encode_header_frame(headers: &HeaderMap) -> Bytes {
    let block = encode_header_block(headers);
    let mut frame = BytesMut::with_capacity(FRAME_PREFIX + block.len());
    frame.put_u8(HEADER_FRAME);
    frame.put_u32(block.len() as u32);
    frame.put_slice(&block);
    frame.freeze()
}

/// One unit of the server's response stream, as the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// A complete gRPC data frame, prefix included (what a tonic decoder reads).
    Data(Bytes),
    /// A header block: the response headers first, the trailers last.
    Headers(HeaderMap),
}

/// Splits the server's messages into frames. Frames may span messages, and one message may hold
/// several, so bytes are buffered until a frame is complete.
#[derive(Debug, Default)]
pub struct ServerFrameDecoder {
    buffer: BytesMut,
}

impl ServerFrameDecoder {
    pub fn push(&mut self, message: &[u8]) {
        self.buffer.extend_from_slice(message);
    }

    /// The next complete frame, if the buffer holds one.
    pub fn next_frame(&mut self, max_message: usize) -> Result<Option<ServerFrame>, ProtocolError> {
        if self.buffer.len() < FRAME_PREFIX {
            return Ok(None);
        }
        let flag = self.buffer[0];
        let size = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if size > max_message {
            return Err(ProtocolError::TooLarge {
                size,
                limit: max_message,
            });
        }
        if self.buffer.len() < FRAME_PREFIX + size {
            return Ok(None);
        }
        let mut frame = self.buffer.split_to(FRAME_PREFIX + size);
        if flag & HEADER_FRAME != 0 {
            frame.advance(FRAME_PREFIX);
            parse_header_block(&frame).map(|headers| Some(ServerFrame::Headers(headers)))
        } else if flag & !0x01 == 0 {
            // 0x00, or 0x01 for a compressed message: handed to the decoder as it is.
            Ok(Some(ServerFrame::Data(frame.freeze())))
        } else {
            Err(ProtocolError::UnknownFlag(flag))
        }
    }

    /// Bytes of an unfinished frame left when the stream ended.
    pub fn leftover(&self) -> usize {
        self.buffer.len()
    }
}

/// A client data message: the `0x00` flag followed by one gRPC frame (or several).
pub fn encode_client_data(frames: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(frames.len() + 1);
    message.push(CLIENT_DATA);
    message.extend_from_slice(frames);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 4 * 1024 * 1024;

    fn grpc_frame(payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn reads_header_blocks_as_improbable_writes_them() {
        let headers = parse_header_block(
            b"content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\nX-Custom: a, b\r\n",
        )
        .unwrap();
        assert_eq!(headers["content-type"], "application/grpc-web+proto");
        assert_eq!(headers["x-grpc-web"], "1");
        assert_eq!(headers["x-custom"], "a, b");
        assert!(parse_header_block(b"").unwrap().is_empty());
    }

    #[test]
    fn header_blocks_round_trip() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", HeaderValue::from_static("3"));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static("name must not be empty"),
        );
        headers.append("x-many", HeaderValue::from_static("1"));
        headers.append("x-many", HeaderValue::from_static("2"));
        assert_eq!(
            parse_header_block(&encode_header_block(&headers)).unwrap(),
            headers
        );
    }

    #[test]
    fn rejects_bad_header_blocks() {
        assert_eq!(
            parse_header_block(b"ok: 1\r\nno colon here\r\n"),
            Err(ProtocolError::BadHeader {
                line: 2,
                reason: "no colon"
            })
        );
        assert!(matches!(
            parse_header_block(b"bad name: 1\r\n"),
            Err(ProtocolError::BadHeader {
                reason: "invalid header name",
                ..
            })
        ));
        assert!(matches!(
            parse_header_block(b"name: bad\x00value\r\n"),
            Err(ProtocolError::BadHeader {
                reason: "invalid header value",
                ..
            })
        ));
        assert_eq!(
            parse_header_block(&vec![b'a'; MAX_HEADER_BLOCK + 1]),
            Err(ProtocolError::HeaderBlockTooLarge)
        );
    }

    #[test]
    fn reads_client_messages() {
        let frame = grpc_frame(b"\x0a\x05world");
        assert_eq!(
            parse_client_message(&encode_client_data(&frame), MAX),
            Ok(ClientMessage::Data(Bytes::from(frame.clone())))
        );
        let two = [frame.clone(), frame.clone()].concat();
        assert!(matches!(
            parse_client_message(&encode_client_data(&two), MAX),
            Ok(ClientMessage::Data(_))
        ));
        assert_eq!(
            parse_client_message(&[1], MAX),
            Ok(ClientMessage::EndOfStream)
        );
        assert_eq!(
            parse_client_message(&encode_client_data(&grpc_frame(b"")), MAX),
            Ok(ClientMessage::Data(Bytes::from(grpc_frame(b""))))
        );
    }

    #[test]
    fn rejects_bad_client_messages() {
        assert_eq!(parse_client_message(&[], MAX), Err(ProtocolError::Empty));
        assert_eq!(
            parse_client_message(&[7, 1], MAX),
            Err(ProtocolError::UnknownFlag(7))
        );
        assert_eq!(
            parse_client_message(&[1, 0], MAX),
            Err(ProtocolError::EndOfStreamWithData(1))
        );
        assert!(matches!(
            parse_client_message(&[0], MAX),
            Err(ProtocolError::Truncated(_))
        ));
        assert!(matches!(
            parse_client_message(&[0, 0, 0, 0], MAX),
            Err(ProtocolError::Truncated(_))
        ));
        // The prefix promises 10 bytes, 3 follow.
        assert!(matches!(
            parse_client_message(&[0, 0, 0, 0, 0, 10, 1, 2, 3], MAX),
            Err(ProtocolError::Truncated(_))
        ));
        assert_eq!(
            parse_client_message(&[0, 0, 0, 0, 1, 0], 255),
            Err(ProtocolError::TooLarge {
                size: 256,
                limit: 255
            })
        );
        // A trailer-flagged frame has no place in a request.
        assert_eq!(
            parse_client_message(&[0, 0x80, 0, 0, 0, 0], MAX),
            Err(ProtocolError::UnknownFlag(0x80))
        );
    }

    #[test]
    fn decodes_server_frames_across_message_boundaries() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/grpc"));
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let data = grpc_frame(b"\x0a\x02hi");
        let stream = [
            encode_header_frame(&headers).to_vec(),
            data.clone(),
            encode_header_frame(&trailers).to_vec(),
        ]
        .concat();

        // Fed one byte at a time, the same three frames come out.
        let mut decoder = ServerFrameDecoder::default();
        let mut frames = Vec::new();
        for byte in &stream {
            decoder.push(std::slice::from_ref(byte));
            while let Some(frame) = decoder.next_frame(MAX).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            [
                ServerFrame::Headers(headers),
                ServerFrame::Data(Bytes::from(data)),
                ServerFrame::Headers(trailers)
            ]
        );
        assert_eq!(decoder.leftover(), 0);
    }
}
