//! Every decoder of the `grpc-websockets` protocol on arbitrary bytes: none may panic, and what
//! they accept must be what they promise (complete frames within the limit; headers that encode
//! back to an equal block).

#![no_main]

use grpc_websocket::protocol::{
    encode_header_block, parse_client_message, parse_header_block, ClientMessage, ServerFrame,
    ServerFrameDecoder, FRAME_PREFIX,
};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok(ClientMessage::Data(frames)) = parse_client_message(data, LIMIT) {
        // Accepted data is whole frames, each within the limit.
        let mut rest = &frames[..];
        while !rest.is_empty() {
            assert!(rest.len() >= FRAME_PREFIX);
            let size = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            assert!(size <= LIMIT);
            rest = &rest[FRAME_PREFIX + size..];
        }
    }

    if let Ok(headers) = parse_header_block(data) {
        let encoded = encode_header_block(&headers);
        assert_eq!(parse_header_block(&encoded).as_ref(), Ok(&headers));
    }

    // The same bytes decode to the same frames however they arrive: fed a byte at a time (a
    // boundary between every two bytes at once), and split in two at every possible point (for
    // inputs short enough that trying each point keeps the run fast).
    let whole = decode(&[data]);
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(decode(&bytes), whole);
    if data.len() <= MAX_SPLIT_LEN {
        for split in 0..=data.len() {
            assert_eq!(decode(&[&data[..split], &data[split..]]), whole, "split at {split}");
        }
    }
});

/// The longest input tried split at every point: the cost grows with the square of the length.
const MAX_SPLIT_LEN: usize = 512;

fn decode(chunks: &[&[u8]]) -> Result<Vec<ServerFrame>, ()> {
    let mut decoder = ServerFrameDecoder::default();
    let mut frames = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_frame(LIMIT) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return Err(()),
            }
        }
    }
    Ok(frames)
}
