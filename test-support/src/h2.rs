//! Hand-made HTTP/2 frames, written as a hostile client writes them: its own settings and
//! flow-control windows, requests whose bodies never end, PINGs to look alive. Header blocks are
//! HPACK literals without indexing or Huffman coding, which every decoder must accept.

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// SETTINGS_INITIAL_WINDOW_SIZE, the window each new stream starts with.
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;

/// The largest flow-control window HTTP/2 allows.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// A frame: type, flags, stream and payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a frame's payload fits 24 bits");
    let mut bytes = len.to_be_bytes()[1..].to_vec();
    bytes.extend([kind, flags]);
    bytes.extend(stream.to_be_bytes());
    bytes.extend(payload);
    bytes
}

/// A SETTINGS frame with these (identifier, value) pairs.
pub fn settings(values: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> = values
        .iter()
        .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
        .collect();
    frame(0x4, 0, 0, &payload)
}

/// The acknowledgement of the peer's SETTINGS.
pub fn settings_ack() -> Vec<u8> {
    frame(0x4, 0x1, 0, &[])
}

/// A WINDOW_UPDATE frame (stream 0: the connection's window).
pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(0x8, 0, stream, &increment.to_be_bytes())
}

/// A PING frame.
pub fn ping(data: [u8; 8]) -> Vec<u8> {
    frame(0x6, 0, 0, &data)
}

/// A DATA frame.
pub fn data(stream: u32, payload: &[u8], end_stream: bool) -> Vec<u8> {
    frame(0x0, u8::from(end_stream), stream, payload)
}

/// A HEADERS frame holding the whole header block (END_HEADERS), pseudo-headers first.
pub fn headers(stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        // Literal header field without indexing, new name.
        block.push(0);
        string(&mut block, name.as_bytes());
        string(&mut block, value.as_bytes());
    }
    frame(0x1, 0x4 | u8::from(end_stream), stream, &block)
}

/// A header block of any size: a HEADERS frame and as many CONTINUATION frames as it takes,
/// each at most 16 KiB (the smallest SETTINGS_MAX_FRAME_SIZE, and the server's default).
pub fn headers_continued(stream: u32, fields: &[(&str, &str)], end_stream: bool) -> Vec<u8> {
    const MAX_FRAME: usize = 16 * 1024;
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0);
        string(&mut block, name.as_bytes());
        string(&mut block, value.as_bytes());
    }
    let chunks: Vec<&[u8]> = block.chunks(MAX_FRAME).collect();
    let mut bytes = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let end_headers = if index + 1 == chunks.len() { 0x4 } else { 0 };
        bytes.extend(if index == 0 {
            frame(0x1, end_headers | u8::from(end_stream), stream, chunk)
        } else {
            frame(0x9, end_headers, stream, chunk)
        });
    }
    bytes
}

/// The header fields of a native gRPC call to `path` on `authority`.
pub fn grpc_request<'a>(path: &'a str, authority: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
}

/// An HPACK string literal, not Huffman coded.
fn string(block: &mut Vec<u8>, bytes: &[u8]) {
    integer(block, 0, 7, bytes.len());
    block.extend(bytes);
}

/// An HPACK integer with an `prefix_bits`-bit prefix, after `flags` in the first byte.
fn integer(block: &mut Vec<u8>, flags: u8, prefix_bits: u32, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        block.push(flags | value as u8);
        return;
    }
    block.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        block.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    block.push(value as u8);
}

/// A gRPC message: the uncompressed flag, the length and the bytes.
pub fn grpc_message(message: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0];
    bytes.extend(u32::try_from(message.len()).unwrap().to_be_bytes());
    bytes.extend(message);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_integers_as_hpack_does() {
        // RFC 7541, C.1.2: 1337 with a 5-bit prefix.
        let mut block = Vec::new();
        integer(&mut block, 0, 5, 1337);
        assert_eq!(block, [31, 154, 10]);
    }

    #[test]
    fn frames_have_a_nine_byte_header() {
        assert_eq!(
            window_update(3, 7),
            [0, 0, 4, 0x8, 0, 0, 0, 0, 3, 0, 0, 0, 7]
        );
    }
}
