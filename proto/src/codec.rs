//! The codec the generated code uses: prost's, with buffers sized for small messages.
//!
//! tonic's default gives every call an 8 KiB encode buffer and an 8 KiB decode buffer. A greeting
//! is a few dozen bytes, so each unary call allocated and freed 16 KiB for nothing; with glibc's
//! allocator that was a measurable part of a call's cost. Buffers start small here and grow when
//! a message needs it; how much a stream buffers before it yields a chunk stays tonic's default.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::ProstCodec;

/// Where an encode or decode buffer starts: room for a small message and its 5-byte frame prefix.
const INITIAL_BUFFER: usize = 512;
/// tonic's default: a stream's encoder hands a chunk to the transport at this size.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding (`application/grpc+proto`) with small initial buffers.
#[derive(Debug, Clone)]
pub struct HelloCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for HelloCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn buffers() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD)
}

impl<T, U> Codec for HelloCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = <ProstCodec<T, U> as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(buffers())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(buffers())
    }
}
