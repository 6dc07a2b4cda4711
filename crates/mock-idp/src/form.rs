//! Request parameters: a query string or an `application/x-www-form-urlencoded`
//! body, parsed once, with the rule that no parameter may appear twice
//! (RFC 6749 3.1 and 3.2: "Request and response parameters MUST NOT be
//! included more than once"). A duplicated `redirect_uri` or `code` is a
//! classic way to slip one value past a check and another past the next.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, header},
};

use crate::token_error::TokenError;

/// Longest value we accept for any one parameter; tokens and URIs fit well
/// below it.
const MAX_VALUE_LEN: usize = 8 * 1024;

/// No `Debug`: a form may hold codes, verifiers, secrets and tokens.
#[derive(Default, Clone)]
pub struct Form(HashMap<String, String>);

#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("the request parameters are not valid form encoding")]
    Malformed,
    #[error("parameter {0} is included more than once")]
    Duplicate(String),
    #[error("parameter {0} is too long")]
    TooLong(String),
    #[error("the body must be application/x-www-form-urlencoded")]
    NotAForm,
}

impl Form {
    pub fn parse(raw: &str) -> Result<Form, FormError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw).map_err(|_| FormError::Malformed)?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if value.len() > MAX_VALUE_LEN {
                return Err(FormError::TooLong(name));
            }
            if map.contains_key(&name) {
                return Err(FormError::Duplicate(name));
            }
            map.insert(name, value);
        }
        Ok(Form(map))
    }

    pub fn parse_bytes(raw: &[u8]) -> Result<Form, FormError> {
        let text = std::str::from_utf8(raw).map_err(|_| FormError::Malformed)?;
        Form::parse(text)
    }

    /// The body of a back-channel request: `application/x-www-form-urlencoded`
    /// and nothing else (RFC 6749 4.1.3, 3.2).
    pub fn read_body(headers: &HeaderMap, body: &[u8]) -> Result<Form, FormError> {
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(FormError::NotAForm);
        }
        Form::parse_bytes(body)
    }

    /// The value of a parameter; an empty value counts as absent
    /// (RFC 6749 3.1: "Parameters sent without a value MUST be treated as if
    /// they were omitted").
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether a parameter appears at all, before the duplicate check of
    /// another could fail.
    pub fn has_duplicate_of(raw: &str, name: &str) -> bool {
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(|pairs| pairs.iter().filter(|(n, _)| n == name).count() > 1)
            .unwrap_or(false)
    }
}

/// The body of a back-channel request (token, revocation, introspection),
/// or an RFC 6749 5.2 error when it cannot be read (over the size limit, a
/// broken stream): a client never gets axum's plain-text rejection.
pub struct BackChannelBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BackChannelBody {
    type Rejection = TokenError;

    async fn from_request(request: Request, state: &S) -> Result<Self, TokenError> {
        Bytes::from_request(request, state)
            .await
            .map(BackChannelBody)
            .map_err(|e| TokenError::InvalidRequest(format!("the request body: {}", e.body_text())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_parameters_are_refused_rfc6749_3_1() {
        assert!(matches!(
            Form::parse("code=a&code=b"),
            Err(FormError::Duplicate(name)) if name == "code"
        ));
    }

    #[test]
    fn empty_values_count_as_absent_rfc6749_3_1() {
        let form = Form::parse("state=&scope=openid").unwrap();
        assert_eq!(form.get("state"), None);
        assert_eq!(form.get("scope"), Some("openid"));
    }
}
