//! Where a body of gRPC length-prefixed messages stands, read as its bytes pass: each message is a
//! compression flag, a four-byte big-endian length and that many bytes.
//!
//! The call gate reads both directions of every call with it, so that it can bound what no
//! service is trusted to bound itself: the size of each message (refused from its prefix, before
//! its bytes are held anywhere) and how long a message that has begun may take to arrive. It
//! copies nothing: it counts.

/// The length prefix of a gRPC message: a compression flag and a four-byte length.
const PREFIX_LEN: usize = 5;

/// A message whose prefix declares more bytes than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Oversized {
    /// Where the message's prefix starts in the bytes just read (0 when it began in earlier ones).
    pub at: usize,
    /// The length it declares.
    pub len: u64,
}

/// The reader's place in the stream of messages.
#[derive(Debug, Default, Clone)]
pub(crate) struct Framing {
    prefix: [u8; PREFIX_LEN],
    /// Bytes of the current message's prefix read so far (0 between messages).
    prefix_read: usize,
    /// Bytes of the current message's payload still to come.
    remaining: u64,
    /// Messages whose first byte has been read.
    started: u64,
    /// Messages read in full.
    completed: u64,
}

impl Framing {
    /// Reads `data`. Fails at the first message that declares more than `max` bytes; the reader
    /// is then left where it was before that message.
    pub(crate) fn read(&mut self, data: &[u8], max: u64) -> Result<(), Oversized> {
        let mut at = 0;
        while at < data.len() {
            let rest = &data[at..];
            if self.remaining > 0 {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.completed += 1;
                }
                at += take;
                continue;
            }
            // The prefix: straight from the bytes when they hold it whole (the usual case, a
            // message at the start of a chunk), else gathered across reads.
            let (len, prefix_at) = if self.prefix_read == 0 && rest.len() >= PREFIX_LEN {
                self.started += 1;
                at += PREFIX_LEN;
                let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
                (len, at - PREFIX_LEN)
            } else {
                if self.prefix_read == 0 {
                    self.started += 1;
                }
                let take = (PREFIX_LEN - self.prefix_read).min(rest.len());
                self.prefix[self.prefix_read..self.prefix_read + take]
                    .copy_from_slice(&rest[..take]);
                self.prefix_read += take;
                at += take;
                if self.prefix_read < PREFIX_LEN {
                    break;
                }
                self.prefix_read = 0;
                let [_, a, b, c, d] = self.prefix;
                (
                    u32::from_be_bytes([a, b, c, d]),
                    at.saturating_sub(PREFIX_LEN),
                )
            };
            let len = u64::from(len);
            if len > max {
                self.started -= 1;
                return Err(Oversized { at: prefix_at, len });
            }
            self.remaining = len;
            if len == 0 {
                self.completed += 1;
            }
        }
        Ok(())
    }

    /// Whether a message has begun and not yet been read in full.
    pub(crate) fn in_message(&self) -> bool {
        self.prefix_read > 0 || self.remaining > 0
    }

    /// Messages whose first byte has been read.
    pub(crate) fn started(&self) -> u64 {
        self.started
    }

    /// Messages read in full.
    pub(crate) fn completed(&self) -> u64 {
        self.completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.resize(PREFIX_LEN + len as usize, b'x');
        bytes
    }

    #[test]
    fn counts_messages_whatever_the_chunks() {
        let stream = [message(3), message(0), message(70_000), message(1)].concat();
        for chunk_size in [1, 2, 5, 7, 4096, stream.len()] {
            let mut framing = Framing::default();
            for chunk in stream.chunks(chunk_size) {
                framing.read(chunk, 100_000).unwrap();
            }
            assert!(!framing.in_message(), "chunks of {chunk_size}");
            assert_eq!((framing.started(), framing.completed()), (4, 4));
        }
    }

    #[test]
    fn a_message_begun_is_in_progress_until_its_last_byte() {
        let mut framing = Framing::default();
        let bytes = message(10);
        framing.read(&bytes[..2], 100).unwrap();
        assert!(framing.in_message());
        assert_eq!((framing.started(), framing.completed()), (1, 0));
        framing.read(&bytes[2..14], 100).unwrap();
        assert!(framing.in_message());
        framing.read(&bytes[14..], 100).unwrap();
        assert!(!framing.in_message());
        assert_eq!(framing.completed(), 1);
    }

    #[test]
    fn refuses_an_oversized_message_by_its_prefix_and_says_where_it_starts() {
        let mut framing = Framing::default();
        let stream = [message(10), message(2000)].concat();
        let refused = framing.read(&stream, 1024).unwrap_err();
        assert_eq!(refused, Oversized { at: 15, len: 2000 });
        assert_eq!((framing.started(), framing.completed()), (1, 1));
        // A prefix split across reads: the message starts before the bytes at hand.
        let mut framing = Framing::default();
        let prefix = &message(5000)[..PREFIX_LEN];
        framing.read(&prefix[..3], 1024).unwrap();
        assert_eq!(
            framing.read(&prefix[3..], 1024),
            Err(Oversized { at: 0, len: 5000 })
        );
    }
}
