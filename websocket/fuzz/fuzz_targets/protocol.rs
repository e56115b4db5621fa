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

    // The same bytes split at every possible point decode to the same frames.
    let whole = decode(&[data]);
    let middle = data.len() / 2;
    assert_eq!(decode(&[&data[..middle], &data[middle..]]), whole);
});

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
