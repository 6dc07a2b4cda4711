//! PKCE, the server's half (RFC 7636): the challenge arrives at step 2 with
//! the authorization request and is bound to the code; the verifier arrives at
//! step 6 with the token request and is checked at step 7.
//!
//! Only `S256` exists here: RFC 9700 2.1.1 says `plain` must not be used, and
//! RFC 7636 4.3 makes a request without `code_challenge_method` mean `plain`,
//! so such a request is refused too.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// RFC 7636 4.1: `[A-Za-z0-9-._~]`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// A `code_challenge` for method S256: BASE64URL(SHA256(verifier)), which is
/// always 43 characters of the base64url alphabet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PkceError {
    #[error("code_challenge is required (PKCE)")]
    MissingChallenge,
    #[error("code_challenge_method must be S256")]
    MethodNotS256,
    #[error("code_challenge is not a base64url SHA-256 digest")]
    MalformedChallenge,
    #[error("code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")]
    MalformedVerifier,
}

impl CodeChallenge {
    /// Parses the challenge and method of an authorization request.
    pub fn from_request(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<CodeChallenge, PkceError> {
        // RFC 7636 4.4.1, RFC 9700 2.1.1: PKCE is required.
        let challenge = challenge.ok_or(PkceError::MissingChallenge)?;
        // RFC 7636 4.3 (absent means plain) and RFC 9700 2.1.1: S256 only.
        if method != Some("S256") {
            return Err(PkceError::MethodNotS256);
        }
        let well_formed = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(CodeChallenge(challenge.to_owned()))
    }

    /// RFC 7636 4.6: BASE64URL(SHA256(ASCII(code_verifier))) must equal the
    /// stored challenge, compared in constant time.
    pub fn is_satisfied_by(&self, verifier: &CodeVerifier) -> bool {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes()));
        bool::from(computed.as_bytes().ct_eq(self.0.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `code_verifier` that has the shape RFC 7636 4.1 demands.
#[derive(Clone)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    pub fn parse(value: &str) -> Result<CodeVerifier, PkceError> {
        let ok = (43..=128).contains(&value.len()) && value.bytes().all(is_unreserved);
        if !ok {
            return Err(PkceError::MalformedVerifier);
        }
        Ok(CodeVerifier(value.to_owned()))
    }
}

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn s256_matches_the_rfc7636_appendix_b_example() {
        let challenge = CodeChallenge::from_request(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(challenge.is_satisfied_by(&CodeVerifier::parse(VERIFIER).unwrap()));
        let other = CodeVerifier::parse(&"a".repeat(43)).unwrap();
        assert!(!challenge.is_satisfied_by(&other));
    }

    #[test]
    fn plain_and_missing_method_are_refused_rfc9700_2_1_1() {
        assert_eq!(
            CodeChallenge::from_request(Some(CHALLENGE), Some("plain")),
            Err(PkceError::MethodNotS256)
        );
        assert_eq!(
            CodeChallenge::from_request(Some(CHALLENGE), None),
            Err(PkceError::MethodNotS256)
        );
        assert_eq!(
            CodeChallenge::from_request(None, Some("S256")),
            Err(PkceError::MissingChallenge)
        );
    }

    #[test]
    fn verifier_shape_is_checked_rfc7636_4_1() {
        assert!(CodeVerifier::parse(&"a".repeat(42)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&format!("{}+", "a".repeat(43))).is_err());
        assert!(CodeVerifier::parse(&"a~._-".repeat(10)).is_ok());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// RFC 7636 4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
        const VERIFIER: &str = "[A-Za-z0-9._~-]{43,128}";

        /// RFC 7636 4.2, computed here on its own: BASE64URL(SHA256(v)).
        fn s256(verifier: &str) -> String {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        }

        proptest! {
            #[test]
            fn every_valid_verifier_satisfies_its_own_s256_challenge_rfc7636_4_6(
                verifier in VERIFIER,
            ) {
                let challenge = CodeChallenge::from_request(Some(&s256(&verifier)), Some("S256"))
                    .expect("an S256 challenge is 43 base64url characters");
                let parsed = CodeVerifier::parse(&verifier).expect("a valid verifier");
                prop_assert!(challenge.is_satisfied_by(&parsed));
            }

            #[test]
            fn no_other_verifier_satisfies_it_rfc7636_4_6(
                verifier in VERIFIER,
                other in VERIFIER,
            ) {
                prop_assume!(verifier != other);
                let challenge =
                    CodeChallenge::from_request(Some(&s256(&verifier)), Some("S256")).unwrap();
                let other = CodeVerifier::parse(&other).unwrap();
                prop_assert!(!challenge.is_satisfied_by(&other));
            }

            #[test]
            fn a_verifier_of_another_shape_is_refused_rfc7636_4_1(value in ".{0,200}") {
                let shaped = (43..=128).contains(&value.len())
                    && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
                prop_assert_eq!(CodeVerifier::parse(&value).is_ok(), shaped);
            }
        }
    }
}
