//! Chains a TLS setup's verifier accepted, so that a server presenting the same chain
//! again is not verified again while every certificate in it is within its dates, as
//! Chromium's caching certificate verifier does. The handshake's own signature, which
//! proves the server holds the leaf's key, is still checked at every check.
//!
//! The verifier's answer depends only on the chain's bytes, the setup's trust anchors and
//! name (fixed for the setup's life) and the time; no revocation list is given to it (the
//! engine asks OCSP itself), so while `now` is within every certificate's dates, an
//! accepted chain is accepted again. A chain the verifier refused is verified every time.

use std::collections::VecDeque;
#[cfg(test)]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rustls::pki_types::CertificateDer;

/// How many accepted chains a setup keeps, the first kept forgotten first: a server behind
/// a load balancer may present a few. Each chain came in one handshake message of at most
/// 64 KiB (rustls's bound, and the legacy probe's `MAX_FLIGHT_BYTES`), so a setup keeps at
/// most 512 KiB.
pub(crate) const KEPT: usize = 8;

/// The accepted chains of one setup.
#[derive(Debug, Default)]
pub(crate) struct Accepted {
    chains: Mutex<VecDeque<Vec<CertificateDer<'static>>>>,
    /// How many times the verifier really ran (the tests read it).
    #[cfg(test)]
    verified: AtomicUsize,
}

impl Accepted {
    /// `Ok` at once when `chain` was accepted before and `in_dates` (every certificate of
    /// the chain is valid now); otherwise the answer of `verify`, the chain kept when it is
    /// `Ok` and in its dates.
    pub fn verify<E>(
        &self,
        chain: &[CertificateDer<'static>],
        in_dates: bool,
        verify: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        if in_dates && self.knows(chain) {
            return Ok(());
        }
        #[cfg(test)]
        self.verified.fetch_add(1, Ordering::Relaxed);
        verify()?;
        if in_dates {
            let mut chains = self.chains.lock().unwrap_or_else(PoisonError::into_inner);
            // Another check of the same chain may have kept it meanwhile.
            if !chains.iter().any(|c| same(c, chain)) {
                if chains.len() >= KEPT {
                    chains.pop_front();
                }
                chains.push_back(chain.to_vec());
            }
        }
        Ok(())
    }

    /// How many times a chain was verified rather than found accepted.
    #[cfg(test)]
    pub fn verified(&self) -> usize {
        self.verified.load(Ordering::Relaxed)
    }

    fn knows(&self, chain: &[CertificateDer<'static>]) -> bool {
        let chains = self.chains.lock().unwrap_or_else(PoisonError::into_inner);
        chains.iter().any(|c| same(c, chain))
    }
}

/// Whether two chains are the same certificates, byte for byte, in the same order.
fn same(a: &[CertificateDer<'_>], b: &[CertificateDer<'_>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.as_ref() == y.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(bytes: &[&[u8]]) -> Vec<CertificateDer<'static>> {
        bytes
            .iter()
            .map(|b| CertificateDer::from(b.to_vec()))
            .collect()
    }

    /// One step: a chain (its certificates' bytes), whether it is in its dates, and what
    /// the verifier answers if asked.
    type Step<'a> = (&'a [&'a [u8]], bool, Result<(), &'a str>);

    /// Runs `steps` on one cache; `expected`: for each step, whether the verifier ran and
    /// the answer.
    fn check(steps: &[Step<'_>], expected: &[(bool, Result<(), &str>)]) {
        let accepted = Accepted::default();
        let mut got = Vec::new();
        for (bytes, in_dates, answer) in steps {
            let before = accepted.verified();
            let result = accepted.verify(&chain(bytes), *in_dates, || *answer);
            got.push((accepted.verified() > before, result));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn an_accepted_chain_is_not_verified_again() {
        let ab: &[&[u8]] = &[b"leaf", b"ca"];
        check(
            &[(ab, true, Ok(())), (ab, true, Ok(())), (ab, true, Err("x"))],
            &[(true, Ok(())), (false, Ok(())), (false, Ok(()))],
        );
    }

    #[test]
    fn a_refused_chain_is_verified_every_time() {
        let ab: &[&[u8]] = &[b"leaf", b"ca"];
        check(
            &[(ab, true, Err("unknown issuer")), (ab, true, Ok(()))],
            &[(true, Err("unknown issuer")), (true, Ok(()))],
        );
    }

    #[test]
    fn out_of_its_dates_a_chain_is_verified_and_not_kept() {
        let ab: &[&[u8]] = &[b"leaf", b"ca"];
        check(
            &[
                (ab, true, Ok(())),
                // The same bytes, now past a certificate's end: the verifier decides.
                (ab, false, Err("expired")),
                (ab, false, Ok(())),
                (ab, true, Ok(())),
            ],
            &[
                (true, Ok(())),
                (true, Err("expired")),
                (true, Ok(())),
                (false, Ok(())),
            ],
        );
    }

    #[test]
    fn another_chain_or_order_is_another_chain() {
        let ab: &[&[u8]] = &[b"leaf", b"ca"];
        let ba: &[&[u8]] = &[b"ca", b"leaf"];
        let a: &[&[u8]] = &[b"leaf"];
        let ac: &[&[u8]] = &[b"leaf", b"cb"];
        check(
            &[
                (ab, true, Ok(())),
                (ba, true, Ok(())),
                (a, true, Ok(())),
                (ac, true, Err("bad")),
            ],
            &[
                (true, Ok(())),
                (true, Ok(())),
                (true, Ok(())),
                (true, Err("bad")),
            ],
        );
    }

    #[test]
    fn the_oldest_chain_is_forgotten_past_the_bound() {
        let names: Vec<Vec<u8>> = (0..=KEPT)
            .map(|i| format!("leaf-{i}").into_bytes())
            .collect();
        let accepted = Accepted::default();
        for name in &names {
            assert_eq!(
                accepted.verify(&chain(&[name]), true, || Ok::<(), ()>(())),
                Ok(())
            );
        }
        assert_eq!(accepted.verified(), KEPT + 1);
        // The newest are known; the first was forgotten and is verified again.
        accepted
            .verify(&chain(&[&names[KEPT]]), true, || Err(()))
            .unwrap_or_else(|()| panic!("the newest chain should be known"));
        assert_eq!(accepted.verified(), KEPT + 1);
        assert_eq!(
            accepted.verify(&chain(&[&names[0]]), true, || Err(())),
            Err(())
        );
        assert_eq!(accepted.verified(), KEPT + 2);
    }
}
