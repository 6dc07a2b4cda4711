//! Properties over generated inputs: a login (who signed in and their
//! tokens) written to each session store and read back is the login that
//! was written, sealed at rest, whatever its claims and tokens hold.

use std::sync::OnceLock;

use bff::session::{Login, Store, Tokens, User};
use proptest::prelude::*;
use testkit::{ManualClock, TempFile, random_string};

/// The stores under test, opened once on a runtime that outlives the cases:
/// memory and SQLite always, Redis where one answers.
struct Stores {
    runtime: tokio::runtime::Runtime,
    /// Each store, by its URL.
    stores: Vec<(String, Store)>,
    /// The SQLite store's file, removed at the end.
    _file: TempFile,
}

fn stores() -> &'static Stores {
    static STORES: OnceLock<Stores> = OnceLock::new();
    STORES.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let db = TempFile::new("bff-properties.db");
        let stores = runtime.block_on(async {
            let mut urls = vec!["memory".to_owned(), db.sqlite_url()];
            urls.extend(testkit::redis::available().await);
            let clock = ManualClock::starting_now();
            let mut stores = Vec::new();
            for url in urls {
                let prefix = testkit::redis::prefix();
                let config = testkit::bff::config(
                    "http://127.0.0.1:1",
                    "http://127.0.0.1:2",
                    "http://127.0.0.1:3",
                    &["--session-store", &url, "--redis-key-prefix", &prefix],
                );
                let store = Store::open(&config, clock.clock()).await.expect("a store");
                stores.push((url, store));
            }
            stores
        });
        Stores {
            runtime,
            stores,
            _file: db,
        }
    })
}

/// A generated login. `Login` has no `Debug` (it holds tokens); these are
/// made up, and proptest shows a failing case as its JSON.
struct Generated(Login);

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", serde_json::to_string(&self.0).unwrap_or_default())
    }
}

fn login() -> impl Strategy<Value = Generated> {
    let text = "\\PC{0,80}";
    (
        (text, proptest::option::of(text), proptest::option::of(text)),
        proptest::collection::btree_map("[a-z_]{1,12}", text, 0..8),
        proptest::option::of(text),
        (text, proptest::option::of(text), text, any::<i64>()),
        any::<i64>(),
    )
        .prop_map(|((sub, name, email), claims, sid, tokens, signed_in_at)| {
            let (access_token, refresh_token, id_token, access_expires_at) = tokens;
            Generated(Login {
                user: User {
                    sub,
                    name,
                    email,
                    claims: claims.into_iter().map(|(k, v)| (k, v.into())).collect(),
                },
                sid,
                tokens: Tokens {
                    access_token,
                    access_expires_at,
                    refresh_token,
                    id_token,
                },
                signed_in_at,
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_login_written_to_each_store_reads_back_unchanged(generated in login()) {
        let login = generated.0;
        let Stores { runtime, stores, .. } = stores();
        for (url, store) in stores {
            let id = random_string();
            let expires_at = ManualClock::starting_now().clock().now() + 3600;
            let read: Option<(Login, u64)> = runtime.block_on(async {
                store
                    .insert_login(&id, "https://idp.example", login.sid.as_deref(), &login.user.sub, &login, expires_at)
                    .await
                    .unwrap();
                store.login(&id).await.unwrap()
            });
            let (read, _version) = read.expect("the login is there");
            prop_assert_eq!(
                serde_json::to_value(&read).unwrap(),
                serde_json::to_value(&login).unwrap(),
                "{}", url
            );
        }
    }
}
