//! Randomness for event secrets: a ChaCha20 generator seeded from the server's own random
//! source and re-seeded every `RESEED_AFTER` draws, since one call to that source costs as much
//! as a whole command. Only the primary draws (replicas receive what it drew).

use std::cell::RefCell;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::secret::SECRET_LEN;

const RESEED_AFTER: u32 = 4096;

struct Generator {
    rng: ChaCha20Rng,
    draws: u32,
}

thread_local! {
    static GENERATOR: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

fn seeded() -> Generator {
    let mut seed = [0u8; 32];
    crate::ffi::random_bytes(&mut seed);
    Generator {
        rng: ChaCha20Rng::from_seed(seed),
        draws: 0,
    }
}

/// A new event's secret.
pub fn secret() -> [u8; SECRET_LEN] {
    GENERATOR.with_borrow_mut(|slot| {
        let generator = match slot {
            Some(g) if g.draws < RESEED_AFTER => g,
            _ => slot.insert(seeded()),
        };
        generator.draws += 1;
        let mut secret = [0u8; SECRET_LEN];
        generator.rng.fill_bytes(&mut secret);
        secret
    })
}
