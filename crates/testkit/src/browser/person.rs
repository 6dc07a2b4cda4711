//! What a person does with the mouse, step by step through the flow: the
//! BFF's page, the IdP's sign-in and consent pages, back to the BFF.

use crate::{Account, stack::Stack};

use super::chrome::Browser;

/// Steps 1-5 as a person walks them: the home page's "Sign in", the
/// password, "Allow", and back home signed in.
pub async fn sign_in_as(browser: &Browser, stack: &Stack, account: &crate::Account) {
    open_home_and_click_sign_in(browser, stack).await;
    submit_credentials(browser, account.username, account.password).await;
    wait_for_consent_page(browser, stack).await;
    decide(browser, "allow").await;
    wait_until_signed_in(browser, stack, account).await;
}

/// Step 1: the BFF's home page, signed out, and its "Sign in" link.
pub async fn open_home_and_click_sign_in(browser: &Browser, stack: &Stack) {
    browser.goto(&stack.bff.url("/")).await;
    browser.click("a[href^='/bff/login']").await;
    wait_for_sign_in_page(browser, stack).await;
}

/// Steps 2-3: the IdP's sign-in page has come up.
pub async fn wait_for_sign_in_page(browser: &Browser, stack: &Stack) {
    browser
        .wait_for_url(&format!("{}/signin", stack.idp.base_url))
        .await;
    browser.find("input[name='password']").await;
}

/// Step 3: types a username and password into the IdP's form and submits it.
pub async fn submit_credentials(browser: &Browser, username: &str, password: &str) {
    browser.fill("input[name='username']", username).await;
    browser.fill("input[name='password']", password).await;
    browser.click("form button[type='submit']").await;
}

/// Step 4: the consent page has come up.
pub async fn wait_for_consent_page(browser: &Browser, stack: &Stack) {
    browser
        .wait_for_url(&format!("{}/consent", stack.idp.base_url))
        .await;
    browser.find("button[name='decision'][value='allow']").await;
}

/// Step 4: presses Allow or Deny.
pub async fn decide(browser: &Browser, decision: &str) {
    browser
        .click(&format!("button[name='decision'][value='{decision}']"))
        .await;
}

/// Steps 5-8 seen from the browser: back on the BFF's home page, signed in.
pub async fn wait_until_signed_in(browser: &Browser, stack: &Stack, account: &Account) {
    browser.wait_for_url(&stack.bff.url("/")).await;
    let hello = serde_json::to_string(&format!("Hello, {}", account.name)).expect("JSON");
    browser
        .wait_until(&format!(
            "document.querySelector('#hello')?.textContent.trim() === {hello}"
        ))
        .await;
}

/// The whole sign-in from the BFF's home page: password, then consent if
/// the IdP asks for it.
pub async fn sign_in(browser: &Browser, stack: &Stack, account: &Account) {
    open_home_and_click_sign_in(browser, stack).await;
    submit_credentials(browser, account.username, account.password).await;
    // The IdP asks for consent once per person and app.
    browser
        .wait_until("document.querySelector('#hello, button[name=decision]') !== null")
        .await;
    if browser
        .url()
        .await
        .as_str()
        .starts_with(&stack.idp.base_url)
    {
        decide(browser, "allow").await;
    }
    wait_until_signed_in(browser, stack, account).await;
}

/// The notes on the page, once app.js has loaded them.
pub async fn notes(browser: &Browser) -> Vec<String> {
    browser
        .wait_until("document.querySelector('#notes-list li') !== null && !document.querySelector('#notes-list[aria-busy]')")
        .await;
    let texts = browser
        .js("return [...document.querySelectorAll('#notes-list .note-text')].map(n => n.textContent);")
        .await;
    serde_json::from_value(texts).expect("note texts")
}

pub async fn add_note(browser: &Browser, text: &str) {
    browser.fill("#note-text", text).await;
    browser.click("#note-form button[type='submit']").await;
    wait_for_note(browser, text).await;
}

pub async fn wait_for_note(browser: &Browser, text: &str) {
    let text = serde_json::to_string(text).expect("JSON");
    browser
        .wait_until(&format!(
            "[...document.querySelectorAll('#notes-list .note-text')].some(n => n.textContent === {text})"
        ))
        .await;
}

pub async fn wait_until_no_note(browser: &Browser, text: &str) {
    let text = serde_json::to_string(text).expect("JSON");
    browser
        .wait_until(&format!(
            "document.querySelector('#notes-status')?.textContent === 'Note deleted' &&
             ![...document.querySelectorAll('#notes-list .note-text')].some(n => n.textContent === {text})"
        ))
        .await;
}

/// Presses the Delete button of the note that reads `text`.
pub async fn delete_note(browser: &Browser, text: &str) {
    let index = browser
        .js(&format!(
            "return [...document.querySelectorAll('#notes-list .note-text')].findIndex(n => n.textContent === {});",
            serde_json::to_string(text).expect("JSON")
        ))
        .await;
    let nth = index.as_u64().expect("the note is on the page") + 1;
    browser
        .click(&format!(
            "#notes-list li.note:nth-child({nth}) button[data-note-id]"
        ))
        .await;
    wait_until_no_note(browser, text).await;
}

/// "Sign out" on the BFF's page: its sign-out page hands the IdP the
/// request (with the ID token as hint, by POST), the IdP ends its session
/// and sends the browser back to the BFF's home page, signed out.
pub async fn sign_out(browser: &Browser, stack: &Stack) {
    browser
        .click("form[action='/bff/logout'] button[type='submit']")
        .await;
    wait_until_signed_out(browser, stack).await;
    browser.find(".notice").await;
}

/// The IdP's "Sign out?" confirmation (RP-Initiated Logout that does not
/// name the browser's own session: the IdP asks the person).
pub async fn wait_for_sign_out_page(browser: &Browser, stack: &Stack) {
    browser.wait_for_url(&stack.idp.base_url).await;
    browser
        .find("form[action='/logout/confirm'] button[type='submit']")
        .await;
}

pub async fn wait_until_signed_out(browser: &Browser, stack: &Stack) {
    browser.wait_for_url(&stack.bff.url("/")).await;
    browser.find("a[href^='/bff/login']").await;
    assert!(
        browser
            .js("return document.querySelector('#hello') === null;")
            .await
            == true
    );
}

/// Whether the BFF has a signed-in session for this browser, asked the way
/// app.js asks: a same-origin `fetch` of `/bff/user`.
pub async fn bff_user_status(browser: &Browser) -> u64 {
    browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/bff/user', { headers: { 'X-CSRF': '1' } }).then(r => done(r.status), e => done(String(e)));",
            vec![],
        )
        .await
        .expect("fetch /bff/user")
        .as_u64()
        .expect("an HTTP status")
}
