//! Properties over generated inputs, against the real IdP over HTTP: the
//! redirect back to the client carries the request's `state` and the
//! issuer exactly, whatever characters the client put in its `state`.

use std::sync::OnceLock;

use proptest::prelude::*;
use testkit::{
    REDIRECT_URI, http_client,
    idp::{AuthRequest, Idp},
    location,
};

/// One IdP for every case, on a runtime that outlives them.
fn idp() -> &'static (tokio::runtime::Runtime, Idp) {
    static IDP: OnceLock<(tokio::runtime::Runtime, Idp)> = OnceLock::new();
    IDP.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let idp = runtime.block_on(Idp::start());
        (runtime, idp)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_redirect_carries_the_state_and_issuer_back_unchanged_rfc6749_4_1_2_rfc9207_2(
        state in "\\PC{1,200}",
    ) {
        let (runtime, idp) = idp();
        // No session at the IdP and prompt=none: the answer comes straight
        // back through the redirect URI (OIDC Core 3.1.2.6).
        let request = AuthRequest::demo("openid").set("state", &state).set("prompt", "none");
        let response = runtime.block_on(http_client().get(request.url(idp)).send()).unwrap();
        prop_assert!(response.status().is_redirection(), "{}", response.status());
        let back = url::Url::parse(&location(&response)).unwrap();
        prop_assert!(back.as_str().starts_with(REDIRECT_URI), "{back}");
        let params: Vec<(String, String)> = back.query_pairs().into_owned().collect();
        let value = |name: &str| {
            params.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect::<Vec<_>>()
        };
        prop_assert_eq!(value("state"), vec![state]);
        prop_assert_eq!(value("iss"), vec![idp.issuer.clone()]);
        prop_assert_eq!(value("error"), vec!["login_required".to_owned()]);
    }
}
