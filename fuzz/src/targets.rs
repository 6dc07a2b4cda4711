//! One function per fuzz target, each on one parser of outside input, each
//! asserting the rule a refusal must follow (and, where a parser accepts,
//! what acceptance must mean). Inputs may hold `{name}` placeholders that
//! [`crate::Harness::splice`] fills with live values.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mock_idp::{
    auth_request::AuthRequest,
    pkce::{CodeChallenge, CodeVerifier},
};
use sha2::{Digest, Sha256};

use crate::{Server, harness, request, split_line};

/// A fuzz target: one input, checked against its oracles (panics on a
/// failure, which libFuzzer reports as a crash).
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and `just fuzz`.
pub const ALL: &[(&str, Target)] = &[
    ("authorize_query", authorize_query),
    ("token_request", token_request),
    ("pkce", pkce),
    ("idp_forms", idp_forms),
    ("idp_config", idp_config),
    ("api_bearer", api_bearer),
    ("api_jwt", api_jwt),
    ("bff_callback", bff_callback),
    ("logout_token", logout_token),
    ("cookies", cookies),
];

/// The authorization request's query (step 2), parsed on its own and sent
/// to `/authorize`. An accepted request redirects only to a URI registered
/// for its client, to the letter (RFC 6749 3.1.2.3, RFC 9700 4.1.3), and
/// carries a well-formed S256 challenge (RFC 9700 2.1.1); a refused one is
/// a page, or an error redirect to such a URI (RFC 6749 4.1.2.1).
pub fn authorize_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let h = harness();
    let raw = h.splice(text);
    let clients = &h.stack.idp.state.clients;
    if let Ok(accepted) = AuthRequest::parse(clients, &raw) {
        let client = clients.get(&accepted.client_id).expect("a known client");
        assert!(
            client.has_redirect_uri(&accepted.redirect_uri),
            "RFC 9700 4.1.3: accepted an unregistered redirect URI {:?}",
            accepted.redirect_uri
        );
        assert_eq!(accepted.challenge.as_str().len(), 43, "RFC 7636 4.2");
    }
    let uri = format!("{}?{raw}", h.known.authorize_path);
    let Some(req) = request("GET", &uri, &[], Vec::new()) else {
        return;
    };
    let answer = h.call(Server::Idp, req);
    answer.page_or_redirect("GET /authorize");
    if answer.status.is_redirection() {
        let location = answer
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("a redirect has a Location");
        let registered = clients
            .iter()
            .flat_map(|c| c.redirect_uris.iter())
            .any(|uri| location.starts_with(uri.as_str()));
        // Onward to the IdP's own pages, or back to a registered URI.
        assert!(
            location.starts_with('/') || registered,
            "RFC 9700 4.1.3: redirected to {location:?}"
        );
    }
}

/// The token request (step 6): the first line is the `Authorization`
/// header (client authentication, RFC 6749 2.3.1), the rest the form body.
/// Every refusal is RFC 6749 5.2 JSON.
pub fn token_request(data: &[u8]) {
    let h = harness();
    let (authorization, body) = split_line(data);
    let body = h.splice(&String::from_utf8_lossy(body)).into_bytes();
    let form = ("content-type", &b"application/x-www-form-urlencoded"[..]);
    let headers: Vec<(&str, &[u8])> = match authorization {
        [] => vec![form],
        value => vec![form, ("authorization", value)],
    };
    let Some(req) = request("POST", &h.known.token_path, &headers, body) else {
        return;
    };
    h.call(Server::Idp, req).oauth_error_json("POST /token");
}

/// PKCE's two values (RFC 7636 4.1-4.6), as `challenge\nmethod\nverifier`.
/// A verifier parses exactly when it has the shape of 4.1; a challenge
/// only with method S256 and the shape of a SHA-256 digest; and a parsed
/// verifier satisfies a challenge exactly when the challenge is its S256.
pub fn pkce(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (challenge, method, verifier) = (
        parts.next().unwrap_or(""),
        parts.next(),
        parts.next().unwrap_or(""),
    );
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let parsed_challenge = CodeChallenge::from_request(Some(challenge), method);
    if parsed_challenge.is_ok() {
        assert_eq!(method, Some("S256"), "RFC 9700 2.1.1: S256 only");
        assert_eq!(challenge.len(), 43, "RFC 7636 4.2: a SHA-256 digest");
    }
    match CodeVerifier::parse(verifier) {
        Ok(parsed) => {
            assert!(shaped, "RFC 7636 4.1: accepted verifier {verifier:?}");
            let s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let own = CodeChallenge::from_request(Some(&s256), Some("S256")).expect("its S256");
            assert!(own.is_satisfied_by(&parsed), "RFC 7636 4.6");
            if let Ok(other) = parsed_challenge {
                assert_eq!(
                    other.is_satisfied_by(&parsed),
                    other.as_str() == s256,
                    "RFC 7636 4.6: only the verifier's own S256 matches"
                );
            }
        }
        Err(_) => assert!(!shaped, "RFC 7636 4.1: refused verifier {verifier:?}"),
    }
}

/// The IdP's forms for a person: sign-in, consent, sign-up, the sign-out
/// confirmation and the account page's revoke. The first byte picks the
/// form and whether the pending sign-in's cookie and a form content type
/// come along; the rest is the body. Each refusal is a page.
pub fn idp_forms(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let h = harness();
    let path = match pick % 5 {
        0 => mock_idp::paths::SIGN_IN,
        1 => mock_idp::paths::CONSENT,
        2 => mock_idp::paths::SIGN_UP,
        3 => mock_idp::paths::LOGOUT_CONFIRM,
        _ => mock_idp::paths::GRANTS_REVOKE,
    };
    let mut headers: Vec<(&str, &[u8])> = Vec::new();
    if pick & 0x10 == 0 {
        headers.push(("content-type", b"application/x-www-form-urlencoded"));
    }
    let cookie = format!(
        "{}; {}",
        h.known.idp_browser_cookie, h.known.idp_session_cookie
    );
    if pick & 0x20 == 0 {
        headers.push(("cookie", cookie.as_bytes()));
    }
    let body = h.splice(&String::from_utf8_lossy(body)).into_bytes();
    let Some(req) = request("POST", path, &headers, body) else {
        return;
    };
    h.call(Server::Idp, req).page_or_redirect(path);
}

/// The IdP's TOML configuration: parsed, then turned into the registry of
/// clients the server would run with. Never a panic, whatever the file.
pub fn idp_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(settings) = mock_idp::Settings::parse(text) {
        let clients = mock_idp::clients::Clients::from_config(&settings.clients);
        for client in clients.iter() {
            for uri in &client.redirect_uris {
                // RFC 9700 4.1.3: a registered URI is a whole URL, no fragment.
                assert!(!uri.as_str().contains('#'), "a fragment in {uri:?}");
            }
        }
    }
}

/// The API's `Authorization` header (RFC 6750 2.1), any bytes, on each of
/// its routes. Refused with 401 and a Bearer challenge (RFC 6750 3).
pub fn api_bearer(data: &[u8]) {
    let Some((&pick, value)) = data.split_first() else {
        return;
    };
    let h = harness();
    let (method, path, body) = match pick % 3 {
        0 => ("GET", "/api/me", Vec::new()),
        1 => ("GET", "/api/notes", Vec::new()),
        _ => ("POST", "/api/notes", br#"{"text":"fuzz"}"#.to_vec()),
    };
    let value = h.splice(&String::from_utf8_lossy(value)).into_bytes();
    let headers: [(&str, &[u8]); 2] = [
        ("authorization", &value),
        ("content-type", b"application/json"),
    ];
    let Some(req) = request(method, path, &headers, body) else {
        return;
    };
    h.call(Server::Api, req).bearer_challenge_on_401(path);
}

/// A JWT access token whose header and claims are the fuzzer's (as
/// `header-json\nclaims-json`), really signed with the IdP's active key, so
/// every claim check runs. The API accepts it only if it says what RFC 9068
/// requires: `typ` at+jwt (4), `iss` exactly the issuer, `aud` holding the
/// API's audience, not expired (4), `sub` present (2.2).
pub fn api_jwt(data: &[u8]) {
    let h = harness();
    let (header, claims) = split_line(data);
    let header = h.splice(&String::from_utf8_lossy(header));
    let claims = h.splice(&String::from_utf8_lossy(claims));
    let token = sign_raw(header.as_bytes(), claims.as_bytes());
    let bearer = format!("Bearer {token}");
    let Some(req) = request(
        "GET",
        "/api/me",
        &[("authorization", bearer.as_bytes())],
        vec![],
    ) else {
        return;
    };
    let answer = h.call(Server::Api, req);
    answer.bearer_challenge_on_401("GET /api/me");
    if answer.status.is_success() {
        let header: serde_json::Value = serde_json::from_str(&header).expect("accepted: JSON");
        let claims: serde_json::Value = serde_json::from_str(&claims).expect("accepted: JSON");
        // A media type, compared without regard to case (RFC 7515 4.1.9,
        // RFC 2045 5.1), as the API does.
        let typ = header["typ"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            typ == "at+jwt" || typ == "application/at+jwt",
            "RFC 9068 4: typ {typ:?}"
        );
        assert_eq!(claims["iss"], h.known.issuer.as_str(), "RFC 9068 4: iss");
        let aud = &claims["aud"];
        assert!(
            aud == h.known.audience.as_str()
                || aud
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == h.known.audience.as_str())),
            "RFC 9068 4: aud {aud}"
        );
        let now = h.stack.time.clock().now();
        let exp = claims["exp"].as_i64().expect("RFC 9068 2.2: exp");
        assert!(exp + 60 >= now, "RFC 9068 4: expired at {exp}, now {now}");
        assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    }
}

/// The BFF's callback query (step 5) on a browser with a login under way:
/// `{state}` is that login's state. Each answer is a page or a redirect.
pub fn bff_callback(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let h = harness();
    // One browser for every input (its session holds a bounded number of
    // logins), with a login under way for this input.
    static COOKIE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    let mut cookie = COOKIE.lock().unwrap_or_else(|e| e.into_inner());
    let login = request(
        "GET",
        "/bff/login?returnUrl=/",
        &[("cookie", cookie.as_bytes())],
        vec![],
    )
    .expect("a login request");
    let started = h.call(Server::Bff, login);
    keep_cookie(&mut cookie, &started);
    let state = url_query(&header_text(&started, "location"), "state");
    let query = h.splice(text).replace("{state}", &state);
    let uri = format!("/bff/callback?{query}");
    let Some(req) = request("GET", &uri, &[("cookie", cookie.as_bytes())], vec![]) else {
        return;
    };
    let answer = h.call(Server::Bff, req);
    keep_cookie(&mut cookie, &answer);
    answer.page_or_redirect("GET /bff/callback");
}

/// Keeps the BFF session cookie an answer sets, as a browser would.
fn keep_cookie(cookie: &mut String, answer: &crate::Answer) {
    let set = header_text(answer, "set-cookie");
    if let Some(pair) = set.split(';').next().filter(|p| !p.is_empty()) {
        *cookie = pair.to_owned();
    }
}

/// The back-channel logout token (OIDC Back-Channel Logout 2.4-2.6). The
/// first byte chooses: the rest sent as the form body as it is, or as
/// `header-json\nclaims-json` really signed with the IdP's key. A refusal is
/// 400 (2.8); an accepted token has the back-channel event and no nonce.
pub fn logout_token(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let (body, claims) = if pick % 2 == 0 {
        (h.splice(&String::from_utf8_lossy(rest)).into_bytes(), None)
    } else {
        let (header, claims) = split_line(rest);
        let header = h.splice(&String::from_utf8_lossy(header));
        let claims = h.splice(&String::from_utf8_lossy(claims));
        let token = sign_raw(header.as_bytes(), claims.as_bytes());
        (format!("logout_token={token}").into_bytes(), Some(claims))
    };
    let headers: [(&str, &[u8]); 1] = [("content-type", b"application/x-www-form-urlencoded")];
    let Some(req) = request("POST", "/bff/backchannel", &headers, body) else {
        return;
    };
    let answer = h.call(Server::Bff, req);
    answer.no_server_error("POST /bff/backchannel");
    assert!(
        answer.status.is_success() || answer.status == 400,
        "OIDC Back-Channel Logout 2.8: {}",
        answer.status
    );
    if answer.status.is_success() {
        let claims: serde_json::Value =
            serde_json::from_str(&claims.expect("only a signed token is accepted"))
                .expect("accepted: JSON claims");
        assert!(
            claims["events"][bff::backchannel::BACKCHANNEL_EVENT].is_object(),
            "OIDC Back-Channel Logout 2.4: the event"
        );
        assert!(claims.get("nonce").is_none(), "2.4: a nonce is refused");
    }
}

/// The `Cookie` header, at the BFF's JSON and page routes and the IdP's
/// cookie-reading pages. The first byte picks the route. Only the real
/// session's cookie signs anyone in at the BFF.
pub fn cookies(data: &[u8]) {
    let Some((&pick, cookie)) = data.split_first() else {
        return;
    };
    let h = harness();
    let cookie = h.splice(&String::from_utf8_lossy(cookie));
    let csrf: (&str, &[u8]) = ("x-csrf", b"1");
    let (server, path) = match pick % 5 {
        0 => (Server::Bff, "/bff/user".to_owned()),
        1 => (Server::Bff, "/".to_owned()),
        2 => (Server::Bff, "/flow".to_owned()),
        3 => (Server::Idp, mock_idp::paths::GRANTS.to_owned()),
        _ => (
            Server::Idp,
            format!(
                "{}?client_id={}&post_logout_redirect_uri=x",
                h.known.logout_path,
                testkit::CLIENT_ID
            ),
        ),
    };
    let Some(req) = request("GET", &path, &[("cookie", cookie.as_bytes()), csrf], vec![]) else {
        return;
    };
    let answer = h.call(server, req);
    if path == "/bff/user" {
        answer.no_server_error("GET /bff/user");
        if answer.status.is_success() {
            let value = h.known.bff_session_cookie.split_once('=').map(|p| p.1);
            assert!(
                value.is_some_and(|v| cookie.contains(v)),
                "signed in without the session's cookie: {cookie:?}"
            );
        }
    } else {
        answer.page_or_redirect(&path);
    }
}

/// A compact JWS over exactly these header and claims bytes, signed with
/// the IdP's active key (RS256), whatever the header says.
fn sign_raw(header: &[u8], claims: &[u8]) -> String {
    static KEY: std::sync::OnceLock<jsonwebtoken::EncodingKey> = std::sync::OnceLock::new();
    let h = harness();
    let key = KEY.get_or_init(|| {
        let stored = h
            .runtime
            .block_on(h.stack.idp.state.store.signing_keys())
            .expect("the IdP's keys");
        let active = stored
            .iter()
            .find(|k| k.retired_at.is_none())
            .expect("an active key");
        jsonwebtoken::EncodingKey::from_rsa_pem(active.private_pem.as_bytes()).expect("RSA PEM")
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), key, jsonwebtoken::Algorithm::RS256)
            .expect("RS256 signs anything");
    format!("{input}.{signature}")
}

fn header_text(answer: &crate::Answer, name: &str) -> String {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn url_query(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}
