//! Marsaglia's xorshift64*: cheap, seedable pseudo-randomness for load balancing and traffic
//! splits, which need spread, not secrecy. A seed makes tests deterministic.

#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// Zero is the generator's only fixed point, so it is replaced by an odd constant.
    pub fn seeded(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Seeded from std's randomly keyed hasher, so processes and threads differ.
    pub fn from_entropy() -> Self {
        use std::hash::{BuildHasher, RandomState};
        Self::seeded(RandomState::new().hash_one(std::thread::current().id()))
    }

    /// The state, to carry the sequence on elsewhere (e.g. in a thread-local cell).
    pub fn state(&self) -> u64 {
        self.0
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_its_sequence_and_zero_does_not_stick() {
        let (mut a, mut b) = (XorShift::seeded(42), XorShift::seeded(42));
        assert_eq!(a.next_u64(), b.next_u64());
        let mut zero = XorShift::seeded(0);
        assert_ne!(zero.next_u64(), 0);
        assert!((0..100).all(|_| zero.below(7) < 7));
    }
}
