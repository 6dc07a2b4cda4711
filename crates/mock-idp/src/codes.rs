//! Authorization codes (step 5): what the IdP hands the client through the
//! browser, and takes back at the token endpoint (step 6).
//!
//! - RFC 6749 10.10: 256 bits from the OS's CSPRNG (at least 128 are asked).
//! - RFC 6749 4.1.2: lives 60 s, single use. A code presented again is
//!   refused and the tokens already issued from it are revoked; so each code
//!   knows, from the moment it is redeemed, the `jti` and refresh-token
//!   family its tokens get.
//! - Bound to client, redirect URI, PKCE challenge, nonce, scopes, user,
//!   auth_time and IdP session.
//!
//! Codes are short-lived, so they are kept in memory; a restart of the IdP
//! simply invalidates the few in flight. Each client holds at most
//! [`PER_CLIENT`] codes, the oldest going first, and codes are forgotten
//! once past their use.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use crate::pkce::CodeChallenge;

/// What the user authorized, bound to the code.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: CodeChallenge,
    pub nonce: Option<String>,
    pub scopes: Vec<String>,
    pub sub: String,
    pub auth_time: i64,
    pub sid: String,
    /// Asked with `access_type=offline` (Google's refresh tokens).
    pub offline: bool,
}

/// Identifiers of the tokens a code is (or was) exchanged for.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_jti: String,
    pub family_id: String,
}

struct Entry {
    grant: Grant,
    expires_at: i64,
    redeemed: Option<Issued>,
    /// Presented again after its first redemption.
    replayed: bool,
    /// Its grant was revoked by the person before or during its exchange.
    withdrawn: bool,
}

/// The outcome of presenting a code at the token endpoint.
pub enum Redeemed {
    /// First use: the grant, and the ids its tokens must carry.
    Fresh(Grant, Issued),
    /// Second use: the ids of the tokens to revoke.
    Replayed(Issued),
    /// Unknown, expired, or its grant revoked.
    Invalid,
}

/// Why a code's tokens, stored by its first exchange, must not live: what
/// happened to the code while they were being made.
pub enum Voided {
    /// The code was presented again (RFC 6749 4.1.2).
    Replayed,
    /// The person revoked the grant the code carries.
    Withdrawn,
}

/// How long a code is remembered after it expired, to recognise a replay
/// of it (seconds).
const REMEMBER_REDEEMED: i64 = 600;
/// Most codes one client holds at once; the oldest go first.
const PER_CLIENT: usize = 10_000;

#[derive(Clone)]
pub struct Codes {
    entries: Arc<Mutex<Entries>>,
    /// Seconds a code lives.
    lifetime: i64,
}

#[derive(Default)]
struct Entries {
    by_code: HashMap<String, Entry>,
    /// Each client's codes, oldest first.
    by_client: HashMap<String, VecDeque<String>>,
    /// When codes past remembering were last dropped.
    swept_at: i64,
    /// Grants withdrawn so far, counted.
    withdrawals: u64,
    /// Each recently withdrawn grant (person, client): the count at its
    /// withdrawal, and when it was.
    withdrawn: HashMap<(String, String), (u64, i64)>,
}

/// How many grants had been withdrawn when a request began to read the
/// consent it would issue a code on. A withdrawal of that grant counted
/// after it means the consent read may be stale, and no code is issued.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

/// How long a withdrawal is remembered for requests that began before it
/// (seconds): far longer than one request takes.
const REMEMBER_WITHDRAWN: i64 = 60;

impl Codes {
    pub fn new(lifetime_seconds: i64) -> Codes {
        Codes {
            entries: Arc::default(),
            lifetime: lifetime_seconds,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Taken before reading the consent a code will be issued on; see
    /// [`Codes::issue`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().withdrawals)
    }

    /// Mints a code for a grant; `None` if the person withdrew the grant
    /// since `ticket` was taken, when the consent read after it may
    /// already be gone.
    pub fn issue(&self, grant: Grant, now: i64, ticket: Ticket) -> Option<String> {
        let code = crate::secret::random_token();
        let mut entries = self.lock();
        let entries = &mut *entries;
        let key = (grant.sub.clone(), grant.client_id.clone());
        if entries
            .withdrawn
            .get(&key)
            .is_some_and(|(count, at)| *count > ticket.0 && now < *at + REMEMBER_WITHDRAWN)
        {
            return None;
        }
        // Forget codes past remembering, at most once a second: not a scan
        // of every code for every new one.
        if entries.swept_at < now {
            entries.swept_at = now;
            entries
                .by_code
                .retain(|_, e| now < e.expires_at + REMEMBER_REDEEMED);
            let by_code = &entries.by_code;
            entries.by_client.retain(|_, order| {
                order.retain(|code| by_code.contains_key(code));
                !order.is_empty()
            });
            entries
                .withdrawn
                .retain(|_, (_, at)| now < *at + REMEMBER_WITHDRAWN);
        }
        // This client's oldest code makes room.
        let order = entries
            .by_client
            .entry(grant.client_id.clone())
            .or_default();
        order.push_back(code.clone());
        let evicted: Vec<String> = order
            .drain(..order.len().saturating_sub(PER_CLIENT))
            .collect();
        for old in evicted {
            entries.by_code.remove(&old);
        }
        entries.by_code.insert(
            code.clone(),
            Entry {
                grant,
                expires_at: now + self.lifetime,
                redeemed: None,
                replayed: false,
                withdrawn: false,
            },
        );
        Some(code)
    }

    /// Takes a code: the first time it yields the grant and marks the code
    /// used, in one step under the lock, so two racing requests cannot both
    /// redeem it.
    pub fn redeem(&self, code: &str, client_id: &str, now: i64) -> Redeemed {
        let mut entries = self.lock();
        let Some(entry) = entries.by_code.get_mut(code) else {
            return Redeemed::Invalid;
        };
        // RFC 6749 4.1.3: only the client the code was issued to may use it
        // up, or trigger the revocation a replay causes. Another client (a
        // public one needs no secret) presenting a leaked code learns
        // nothing and spends nothing.
        if entry.grant.client_id != client_id {
            return Redeemed::Invalid;
        }
        if let Some(issued) = &entry.redeemed {
            entry.replayed = true;
            return Redeemed::Replayed(issued.clone());
        }
        if entry.withdrawn || now >= entry.expires_at {
            return Redeemed::Invalid;
        }
        let issued = Issued {
            access_jti: crate::secret::random_id(),
            family_id: crate::secret::random_id(),
        };
        entry.redeemed = Some(issued.clone());
        Redeemed::Fresh(entry.grant.clone(), issued)
    }

    /// Whether the code was voided after its first redemption: presented
    /// again, or its grant revoked. The first exchange asks once its tokens
    /// are stored: a replay or a revocation that raced it could not revoke
    /// tokens that did not exist yet.
    pub fn voided(&self, code: &str) -> Option<Voided> {
        let entries = self.lock();
        // A code no longer held (its client's 10,000 newer codes pushed it
        // out during its own exchange) reads as not voided: the store's
        // revocations still reach its tokens once stored.
        let entry = entries.by_code.get(code)?;
        if entry.replayed {
            Some(Voided::Replayed)
        } else if entry.withdrawn {
            Some(Voided::Withdrawn)
        } else {
            None
        }
    }

    /// The person revoked `client_id`'s grant: none of the codes issued to
    /// it for them may yield tokens any more, an exchange under way learns
    /// of it through [`Codes::voided`], and a request that read the consent
    /// before it gets no code (see [`Codes::issue`]).
    ///
    /// Called both before the store revokes the grant and after: before, so
    /// that every exchange either finds its code withdrawn or stored its
    /// tokens in time to be revoked with the rest; after, so that a request
    /// that read the consent while the store was revoking it issues no code
    /// once the revocation is done.
    pub fn withdraw(&self, sub: &str, client_id: &str, now: i64) {
        let mut entries = self.lock();
        let entries = &mut *entries;
        entries.withdrawals += 1;
        entries.withdrawn.insert(
            (sub.to_owned(), client_id.to_owned()),
            (entries.withdrawals, now),
        );
        let Some(order) = entries.by_client.get(client_id) else {
            return;
        };
        for code in order {
            if let Some(entry) = entries.by_code.get_mut(code)
                && entry.grant.sub == sub
            {
                entry.withdrawn = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(client_id: &str) -> Grant {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        Grant {
            client_id: client_id.into(),
            redirect_uri: "http://localhost:3000/callback".into(),
            challenge: CodeChallenge::from_request(Some(challenge), Some("S256")).unwrap(),
            nonce: None,
            scopes: vec!["openid".into()],
            sub: "sub".into(),
            auth_time: 0,
            sid: "sid".into(),
            offline: false,
        }
    }

    fn issued(codes: &Codes, grant: Grant, now: i64) -> String {
        let ticket = codes.ticket();
        codes.issue(grant, now, ticket).expect("no withdrawal")
    }

    #[test]
    fn a_client_holds_at_most_its_share_of_codes_the_oldest_going_first() {
        let codes = Codes::new(60);
        let first = issued(&codes, grant("busy"), 1_000);
        let other = issued(&codes, grant("quiet"), 1_000);
        for _ in 0..PER_CLIENT {
            issued(&codes, grant("busy"), 1_000);
        }
        assert!(matches!(
            codes.redeem(&first, "busy", 1_001),
            Redeemed::Invalid
        ));
        assert!(matches!(
            codes.redeem(&other, "quiet", 1_001),
            Redeemed::Fresh(..)
        ));
        let entries = codes.lock();
        assert_eq!(entries.by_client["busy"].len(), PER_CLIENT);
        assert_eq!(entries.by_code.len(), PER_CLIENT + 1);
    }

    #[test]
    fn codes_past_remembering_are_forgotten() {
        let codes = Codes::new(60);
        let old = issued(&codes, grant("client"), 1_000);
        let later = 1_000 + 60 + REMEMBER_REDEEMED;
        issued(&codes, grant("client"), later);
        let entries = codes.lock();
        assert!(!entries.by_code.contains_key(&old));
        assert_eq!(entries.by_client["client"].len(), 1);
    }

    #[test]
    fn a_withdrawn_grant_voids_only_that_persons_codes_for_that_client() {
        let codes = Codes::new(60);
        let pending = issued(&codes, grant("client"), 1_000);
        let in_exchange = issued(&codes, grant("client"), 1_000);
        let other_client = issued(&codes, grant("other"), 1_000);
        let other_person = issued(
            &codes,
            Grant {
                sub: "someone else".into(),
                ..grant("client")
            },
            1_000,
        );
        assert!(matches!(
            codes.redeem(&in_exchange, "client", 1_001),
            Redeemed::Fresh(..)
        ));

        codes.withdraw("sub", "client", 1_001);

        assert!(matches!(
            codes.redeem(&pending, "client", 1_001),
            Redeemed::Invalid
        ));
        assert!(matches!(
            codes.voided(&in_exchange),
            Some(Voided::Withdrawn)
        ));
        assert!(matches!(
            codes.redeem(&other_client, "other", 1_001),
            Redeemed::Fresh(..)
        ));
        assert!(matches!(
            codes.redeem(&other_person, "client", 1_001),
            Redeemed::Fresh(..)
        ));
        assert!(codes.voided(&other_person).is_none());
    }

    #[test]
    fn a_request_that_read_consent_before_a_withdrawal_gets_no_code() {
        let codes = Codes::new(60);
        let before = codes.ticket();
        codes.withdraw("sub", "client", 1_000);
        assert!(codes.issue(grant("client"), 1_000, before).is_none());
        // Another client of the same person, or a request begun after the
        // withdrawal, is not held back.
        assert!(codes.issue(grant("other"), 1_000, before).is_some());
        let after = codes.ticket();
        assert!(codes.issue(grant("client"), 1_000, after).is_some());
        // Remembered only as long as a request could still be under way.
        let later = 1_000 + REMEMBER_WITHDRAWN + 1;
        assert!(codes.issue(grant("client"), later, before).is_some());
    }
}
