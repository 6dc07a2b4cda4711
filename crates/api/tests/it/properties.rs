//! Properties over generated inputs: every access token the IdP's own mint
//! produces (any user, any scopes the client may have, any lifetime) is
//! accepted by the API's validation, which reports the token's own claims.

use std::sync::OnceLock;

use mock_idp::tokens::{Family, Refresh, Subject, mint};
use proptest::{prelude::*, sample::subsequence};
use serde_json::Value;
use testkit::{CLIENT_ID, api::Api, idp::Idp, random_string};

/// One IdP and API for every case, on a runtime that outlives them.
fn stack() -> &'static (tokio::runtime::Runtime, Idp, Api) {
    static STACK: OnceLock<(tokio::runtime::Runtime, Idp, Api)> = OnceLock::new();
    STACK.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let (idp, api) = runtime.block_on(async {
            let idp = Idp::start().await;
            let api = Api::start(&idp).await;
            (idp, api)
        });
        (runtime, idp, api)
    })
}

const SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "offline_access",
    "notes:read",
    "notes:write",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_minted_access_token_is_accepted_with_its_claims_rfc9068_4(
        username in prop::sample::select(vec!["alice@example.com", "bob@example.com"]),
        scopes in subsequence(SCOPES.to_vec(), 1..=SCOPES.len()),
        lifetime in 60u64..86_400,
    ) {
        let (runtime, idp, api) = stack();
        let answer: Value = runtime.block_on(async {
            let state = &idp.state;
            let user = state.store.user_by_username(username).await.unwrap().unwrap();
            let mut client = state.clients.get(CLIENT_ID).unwrap().clone();
            client.access_token_seconds = Some(lifetime);
            let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            let now = state.clock.now();
            let subject = Subject {
                user: &user,
                client: &client,
                scopes: &scopes,
                granted: &scopes,
                auth_time: now,
                sid: None,
                nonce: None,
                refresh: Refresh::None,
            };
            let family = Family { id: &random_string(), expires_at: now + 86_400 };
            let tokens = mint(state, &subject, &random_string(), &family).await.unwrap();
            let response = api.me(&tokens.access_token).await;
            assert_eq!(response.status(), 200, "{scopes:?} for {lifetime} s");
            let mut me: Value = response.json().await.unwrap();
            me["expected_sub"] = user.sub.clone().into();
            me["expected_exp"] = (now + i64::try_from(lifetime).unwrap()).into();
            me
        });
        prop_assert_eq!(&answer["sub"], &answer["expected_sub"]);
        prop_assert_eq!(&answer["client_id"], CLIENT_ID);
        prop_assert_eq!(&answer["expires_at"], &answer["expected_exp"]);
        let mut granted: Vec<&str> = answer["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        granted.sort_unstable();
        let mut asked = scopes.clone();
        asked.sort_unstable();
        prop_assert_eq!(granted, asked);
    }
}
