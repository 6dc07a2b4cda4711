//! The one anti-CSRF scheme of the IdP's forms (RFC 6749 10.12): every form
//! carries a token that only the page the IdP served to this browser can
//! know, and the IdP refuses a post without it.
//!
//! The token is a digest of the browser's own secret (the `mockidp_browser`
//! cookie, 256 random bits, `HttpOnly`, see [`crate::session`]) and of what
//! the form is for. Another site can make a browser post a form, but cannot
//! read the cookie or the page, so it cannot know the token; a token of one
//! form is no good for another.

use crate::{pages::PageError, secret};

/// What a form is for; a token is good for one purpose only.
#[derive(Clone, Copy)]
pub enum Purpose<'a> {
    /// A pending sign-in's pages (sign-in, registration, consent), by its id.
    Interaction(&'a str),
    /// Confirming an RP-initiated logout.
    ConfirmLogout,
    /// Taking back an application's access on the grants page.
    RevokeGrant,
}

impl Purpose<'_> {
    fn label(&self) -> String {
        match self {
            Purpose::Interaction(tx) => format!("interaction:{tx}"),
            Purpose::ConfirmLogout => "confirm-logout".into(),
            Purpose::RevokeGrant => "revoke-grant".into(),
        }
    }
}

/// The token a page embeds in its form, for this browser.
pub fn token(browser: &str, purpose: Purpose<'_>) -> String {
    secret::digest(&format!("mock-idp csrf\n{}\n{browser}", purpose.label()))
}

/// Checks the token a form posted; without a browser secret nothing passes.
pub fn check(browser: Option<&str>, purpose: Purpose<'_>, posted: &str) -> Result<(), PageError> {
    match browser {
        Some(browser) if secret::same(&token(browser, purpose), posted) => Ok(()),
        _ => Err(PageError::Forged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_one_browser_and_one_purpose_only_rfc6749_10_12() {
        let mine = token("browser-a", Purpose::Interaction("tx1"));
        assert!(check(Some("browser-a"), Purpose::Interaction("tx1"), &mine).is_ok());
        assert!(check(Some("browser-b"), Purpose::Interaction("tx1"), &mine).is_err());
        assert!(check(Some("browser-a"), Purpose::Interaction("tx2"), &mine).is_err());
        assert!(check(Some("browser-a"), Purpose::ConfirmLogout, &mine).is_err());
        assert!(check(None, Purpose::Interaction("tx1"), &mine).is_err());
        assert!(check(Some("browser-a"), Purpose::Interaction("tx1"), "").is_err());
    }
}
