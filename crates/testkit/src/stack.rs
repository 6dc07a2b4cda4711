//! The whole stack in-process: IdP, API and BFF on free ports, on one
//! clock, the IdP's demo client registered with the BFF's real URLs.

use crate::{
    CLIENT_ID, ManualClock,
    api::Api,
    bff::{self, Bff},
    idp::Idp,
    server::listen,
};

pub struct Stack {
    pub idp: Idp,
    pub api: Api,
    pub bff: Bff,
    /// The clock all three read: move it instead of sleeping.
    pub time: ManualClock,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(mock_idp::Settings::demo(), &[]).await
    }

    /// The stack with other IdP settings and extra BFF options (e.g.
    /// `--session-store redis://…`).
    pub async fn start_with(settings: mock_idp::Settings, bff_args: &[&str]) -> Stack {
        Stack::start_on(settings, bff_args, "sqlite::memory:", "sqlite::memory:").await
    }

    /// The same, with the IdP's and the API's state in the databases these
    /// URLs name (e.g. PostgreSQL's, from [`crate::database`]).
    pub async fn start_on(
        mut settings: mock_idp::Settings,
        bff_args: &[&str],
        idp_database_url: &str,
        api_database_url: &str,
    ) -> Stack {
        let time = ManualClock::starting_now();
        let (listener, addr) = listen().await;
        let bff_url = format!("http://{addr}");
        register_bff(&mut settings, &bff_url);
        let idp = Idp::start_full(settings, idp_database_url, "RS256", time.clone()).await;
        let api = Api::start_with_args(&idp, &["--database-url", api_database_url]).await;
        let config = bff::config(&bff_url, &idp.issuer, &api.base_url, bff_args);
        let bff = Bff::start_on(listener, config, &time).await;
        Stack {
            idp,
            api,
            bff,
            time,
        }
    }
}

/// The demo client's URLs at the IdP, moved to where the BFF listens.
pub fn register_bff(settings: &mut mock_idp::Settings, bff_url: &str) {
    let uri = |path: &str| {
        mock_idp::clients::RedirectUri::parse(&format!("{bff_url}{path}")).expect("URI")
    };
    let client = settings
        .clients
        .iter_mut()
        .find(|c| c.client_id == CLIENT_ID)
        .expect("demo client");
    client.redirect_uris = vec![uri("/bff/callback")];
    client.post_logout_redirect_uris = vec![uri("/")];
    client.backchannel_logout_uri = Some(format!("{bff_url}/bff/backchannel"));
    client.client_uri = Some(format!("{bff_url}/"));
}
