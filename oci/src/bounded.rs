//! Downloads that hold their bounds before the bytes arrive: a size a descriptor announces is
//! checked before anything is asked, a `Content-Length` before the body is read, and a body
//! whose size nobody announced is read no further than its bound. A hostile registry costs at
//! most the bound, never what it chooses to send.

/// What a download may be: never more than `limit` bytes (the configured cap), and exactly
/// `expected` bytes when a descriptor named its size (the descriptor is itself verified by
/// digest, so any other size is wrong content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub limit: u64,
    pub expected: Option<u64>,
}

/// Why a download was refused or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Overrun {
    /// Over the limit; `size` is the size announced, or "more than N" when it was counted.
    TooLarge { size: String },
    /// Not the size the descriptor names; `actual` says what was announced or received.
    SizeMismatch { expected: u64, actual: String },
}

impl Bounds {
    /// Before any request: a descriptor announcing more than the limit.
    pub fn check_descriptor(&self) -> Result<(), Overrun> {
        match self.expected {
            Some(expected) if expected > self.limit => Err(Overrun::TooLarge {
                size: expected.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Before the body is read: the answer's `Content-Length`, when it has one.
    pub fn check_announced(&self, content_length: Option<u64>) -> Result<(), Overrun> {
        self.check_descriptor()?;
        let Some(announced) = content_length else {
            return Ok(());
        };
        if announced > self.limit {
            return Err(Overrun::TooLarge {
                size: announced.to_string(),
            });
        }
        match self.expected {
            Some(expected) if expected != announced => Err(Overrun::SizeMismatch {
                expected,
                actual: format!("{announced} bytes"),
            }),
            _ => Ok(()),
        }
    }

    /// While reading: after `received` bytes in all.
    pub fn check_received(&self, received: u64) -> Result<(), Overrun> {
        if let Some(expected) = self.expected
            && received > expected
        {
            return Err(Overrun::SizeMismatch {
                expected,
                actual: format!("more than {expected} bytes"),
            });
        }
        if received > self.limit {
            return Err(Overrun::TooLarge {
                size: format!("more than {}", self.limit),
            });
        }
        Ok(())
    }

    /// At the end of the body: `received` bytes in all.
    pub fn check_complete(&self, received: u64) -> Result<(), Overrun> {
        match self.expected {
            Some(expected) if expected != received => Err(Overrun::SizeMismatch {
                expected,
                actual: format!("{received} bytes"),
            }),
            _ => Ok(()),
        }
    }

    /// How much room to reserve up front: what is expected, within the limit, and never more
    /// than a modest amount on anyone's word before the bytes come. A descriptor's size is the
    /// registry's word too (it wrote the manifest): a manifest claiming a 512 MiB layer must not
    /// make every pull of it reserve 512 MiB before one byte arrives; the buffer grows as they do.
    pub fn capacity(&self, content_length: Option<u64>) -> usize {
        const UNVERIFIED_RESERVE: u64 = 1024 * 1024;
        const DESCRIBED_RESERVE: u64 = 16 * 1024 * 1024;
        let hint = match self.expected {
            Some(expected) => expected.min(DESCRIBED_RESERVE),
            None => content_length.unwrap_or(0).min(UNVERIFIED_RESERVE),
        };
        usize::try_from(hint.min(self.limit)).unwrap_or(0)
    }
}

/// Why reading a body stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    Overrun(Overrun),
    /// The first bytes are not the wasm magic, and only wasm was wanted.
    NotWasm,
}

/// A body being received within its bounds, optionally refusing at the first bytes anything
/// that is not wasm.
pub(crate) struct BoundedBuffer {
    bytes: Vec<u8>,
    bounds: Bounds,
    must_be_wasm: bool,
}

impl BoundedBuffer {
    pub fn new(bounds: Bounds, must_be_wasm: bool, content_length: Option<u64>) -> Self {
        Self {
            bytes: Vec::with_capacity(bounds.capacity(content_length)),
            bounds,
            must_be_wasm,
        }
    }

    /// Takes the next chunk; refuses it (keeping nothing of it) when it would break a bound.
    pub fn accept(&mut self, chunk: &[u8]) -> Result<(), Stop> {
        let total = self.bytes.len() as u64 + chunk.len() as u64;
        self.bounds.check_received(total).map_err(Stop::Overrun)?;
        self.bytes.extend_from_slice(chunk);
        if self.must_be_wasm {
            let seen = self.bytes.len().min(4);
            if self.bytes[..seen] != b"\0asm"[..seen] {
                return Err(Stop::NotWasm);
            }
        }
        Ok(())
    }

    /// The whole body, once the answer ended.
    pub fn finish(self) -> Result<Vec<u8>, Stop> {
        self.bounds
            .check_complete(self.bytes.len() as u64)
            .map_err(Stop::Overrun)?;
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPPED: Bounds = Bounds {
        limit: 5,
        expected: None,
    };
    const DESCRIBED: Bounds = Bounds {
        limit: 100,
        expected: Some(3),
    };

    #[test]
    fn a_descriptor_over_the_limit_is_refused_before_any_request() {
        let bounds = Bounds {
            limit: 10,
            expected: Some(11),
        };
        assert_eq!(
            bounds.check_descriptor(),
            Err(Overrun::TooLarge { size: "11".into() })
        );
        assert_eq!(DESCRIBED.check_descriptor(), Ok(()));
        assert_eq!(CAPPED.check_descriptor(), Ok(()));
    }

    #[test]
    fn an_announced_length_is_held_to_the_limit_and_the_descriptor() {
        assert_eq!(CAPPED.check_announced(None), Ok(()));
        assert_eq!(CAPPED.check_announced(Some(5)), Ok(()));
        assert_eq!(
            CAPPED.check_announced(Some(6)),
            Err(Overrun::TooLarge { size: "6".into() })
        );
        assert_eq!(DESCRIBED.check_announced(Some(3)), Ok(()));
        assert_eq!(
            DESCRIBED.check_announced(Some(4)),
            Err(Overrun::SizeMismatch {
                expected: 3,
                actual: "4 bytes".into()
            })
        );
        assert_eq!(
            DESCRIBED.check_announced(Some(101)),
            Err(Overrun::TooLarge { size: "101".into() })
        );
    }

    #[test]
    fn an_unannounced_body_stops_at_its_bound() {
        let mut buffer = BoundedBuffer::new(CAPPED, false, None);
        buffer.accept(b"abc").unwrap();
        buffer.accept(b"de").unwrap();
        assert_eq!(
            buffer.accept(b"f"),
            Err(Stop::Overrun(Overrun::TooLarge {
                size: "more than 5".into()
            }))
        );
        assert_eq!(buffer.finish().unwrap(), b"abcde");

        let mut buffer = BoundedBuffer::new(DESCRIBED, false, None);
        assert_eq!(
            buffer.accept(b"abcd"),
            Err(Stop::Overrun(Overrun::SizeMismatch {
                expected: 3,
                actual: "more than 3 bytes".into()
            }))
        );
        let mut buffer = BoundedBuffer::new(DESCRIBED, false, None);
        buffer.accept(b"ab").unwrap();
        assert_eq!(
            buffer.finish(),
            Err(Stop::Overrun(Overrun::SizeMismatch {
                expected: 3,
                actual: "2 bytes".into()
            }))
        );
    }

    #[test]
    fn non_wasm_is_refused_at_the_first_bytes() {
        let bounds = Bounds {
            limit: 100,
            expected: None,
        };
        let mut buffer = BoundedBuffer::new(bounds, true, None);
        buffer.accept(b"\0a").unwrap();
        buffer.accept(b"sm\x0d\0").unwrap();
        let mut buffer = BoundedBuffer::new(bounds, true, None);
        assert_eq!(buffer.accept(b"\x1f\x8b"), Err(Stop::NotWasm));
    }

    #[test]
    fn an_unverified_length_reserves_little() {
        let bounds = Bounds {
            limit: 1 << 30,
            expected: None,
        };
        assert_eq!(bounds.capacity(Some(1 << 29)), 1024 * 1024);
        assert_eq!(DESCRIBED.capacity(Some(1 << 29)), 3);
        assert_eq!(CAPPED.capacity(Some(4)), 4);
        let claimed = Bounds {
            limit: 1 << 30,
            expected: Some(1 << 29),
        };
        assert_eq!(claimed.capacity(Some(1 << 29)), 16 * 1024 * 1024);
    }
}
