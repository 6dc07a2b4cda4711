// Drives server.mjs end to end with plain fetch, the way a Rust test would:
// authorization code + PKCE through the built-in login and consent pages,
// code exchange, refresh-token rotation and reuse detection, key rotation,
// RP-initiated logout and back-channel logout.
//
//   OP_PORT=9100 node server.mjs &      # default client bff-demo
//   node drive-login.mjs [http://localhost:9100]
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as http from 'node:http';

const ISSUER = process.argv[2] ?? 'http://localhost:9100';
const CLIENT_ID = 'bff-demo';
const CLIENT_SECRET = 'bff-demo-secret';
const REDIRECT_URI = 'http://localhost:3999/cb';
const POST_LOGOUT_REDIRECT_URI = 'http://localhost:3999/';
const SCOPE = 'openid profile email offline_access notes:read notes:write';
const USER = 'alice@example.com';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const decodeJwt = (jwt) => {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), claims: JSON.parse(Buffer.from(p, 'base64url')) };
};
const show = (label, value) => console.log(`${label}:`, JSON.stringify(value, null, 2));

// -------------------------------------------------- the client's own listener
// Receives the back-channel logout token (POST /backchannel).
let gotLogoutToken;
const logoutTokenArrived = new Promise((resolve) => { gotLogoutToken = resolve; });
const rp = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/backchannel') {
      gotLogoutToken(new URLSearchParams(body).get('logout_token'));
    }
    res.writeHead(200).end();
  });
});
await new Promise((r) => rp.listen(3999, '127.0.0.1', r));

// -------------------------------------------------- a browser: fetch + cookies
// The jar keys cookies by name only (one host); enough for this flow.
const jar = new Map();
const cookieNames = new Set();
async function browse(url, { method = 'GET', form } = {}) {
  const res = await fetch(url, {
    method,
    redirect: 'manual',
    headers: {
      cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
      ...(form && { 'content-type': 'application/x-www-form-urlencoded' }),
    },
    body: form && new URLSearchParams(form),
  });
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const name = pair.slice(0, pair.indexOf('='));
    const value = pair.slice(pair.indexOf('=') + 1);
    cookieNames.add(name);
    if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(name); else jar.set(name, value);
  }
  return res;
}

// The first <form> of a page: its action and its named inputs.
function parseForm(html) {
  const form = html.match(/<form[^>]*>[\s\S]*?<\/form>/)?.[0];
  if (!form) return undefined;
  const action = form.match(/action="([^"]*)"/)[1].replaceAll('&amp;', '&');
  const fields = {};
  for (const input of form.matchAll(/<input[^>]*>/g)) {
    const name = input[0].match(/name="([^"]*)"/)?.[1];
    if (name) fields[name] = input[0].match(/value="([^"]*)"/)?.[1] ?? '';
  }
  return { action, fields };
}

// Follows redirects and fills in the OP's pages until it is sent to `stopAt`.
async function userAgent(startUrl, stopAt) {
  let res = await browse(startUrl);
  for (let step = 0; step < 10; step += 1) {
    const location = res.headers.get('location');
    if (location) {
      const next = new URL(location, res.url || ISSUER).href;
      console.log(`  ${res.status} -> ${next}`);
      if (next.startsWith(stopAt)) return next;
      res = await browse(next);
      continue;
    }
    const html = await res.text();
    const form = parseForm(html);
    assert.ok(form, `no form on page (${res.status}): ${html.slice(0, 300)}`);
    const action = new URL(form.action, ISSUER).href;
    if ('login' in form.fields) {
      // Login page: hidden prompt=login, text "login", password "password".
      console.log(`  login form -> POST ${action}`, Object.keys(form.fields));
      res = await browse(action, { method: 'POST', form: { ...form.fields, login: USER, password: 'any' } });
    } else if (form.fields.prompt === 'consent') {
      // Consent page: only the hidden prompt=consent.
      console.log(`  consent form -> POST ${action}`, Object.keys(form.fields));
      res = await browse(action, { method: 'POST', form: form.fields });
    } else {
      throw new Error(`unexpected page: ${html.slice(0, 300)}`);
    }
  }
  throw new Error('too many steps');
}

// -------------------------------------------------- the token endpoint
const meta = await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json();
// client_secret_basic: id and secret form-urlencoded, then base64 (RFC 6749 2.3.1).
const basic = Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64');
async function token(params) {
  const res = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  return { status: res.status, body: await res.json() };
}

// Verifies an RS256 JWT against the OP's current JWKS (no library needed).
async function verifyJwt(jwt) {
  const { keys } = await (await fetch(meta.jwks_uri)).json();
  const [h, p, s] = jwt.split('.');
  const { kid } = JSON.parse(Buffer.from(h, 'base64url'));
  const jwk = keys.find((k) => k.kid === kid);
  assert.ok(jwk, `kid ${kid} not in JWKS`);
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')), 'bad signature');
  return kid;
}

// ==================================================== 1. authorization request
const verifier = b64url(crypto.randomBytes(32));
const state = b64url(crypto.randomBytes(16));
const nonce = b64url(crypto.randomBytes(16));
const authorize = new URL(meta.authorization_endpoint);
authorize.search = new URLSearchParams({
  response_type: 'code',
  client_id: CLIENT_ID,
  redirect_uri: REDIRECT_URI,
  scope: SCOPE,
  state,
  nonce,
  code_challenge: b64url(crypto.hash('sha256', verifier, 'buffer')),
  code_challenge_method: 'S256',
  // OIDC Core 11: offline_access (a refresh token) only with prompt=consent.
  prompt: 'consent',
});
console.log(`GET ${authorize}`);
const callback = new URL(await userAgent(authorize.href, REDIRECT_URI));
show('callback query', Object.fromEntries(callback.searchParams));
assert.equal(callback.searchParams.get('state'), state);
assert.equal(callback.searchParams.get('iss'), meta.issuer, 'RFC 9207 iss');
console.log('OP cookies seen:', [...cookieNames]);

// ==================================================== 2. code exchange
const t0 = await token({
  grant_type: 'authorization_code', code: callback.searchParams.get('code'), redirect_uri: REDIRECT_URI, code_verifier: verifier,
});
assert.equal(t0.status, 200, JSON.stringify(t0.body));
console.log('token response keys:', Object.keys(t0.body), 'scope:', t0.body.scope, 'expires_in:', t0.body.expires_in);
const at = decodeJwt(t0.body.access_token);
show('access token header', at.header);
show('access token claims', at.claims);
assert.equal(at.header.typ, 'at+jwt');
assert.equal(at.header.alg, 'RS256');
assert.equal(at.claims.aud, 'api://default');
assert.ok(at.claims.scope.split(' ').includes('notes:read'));
await verifyJwt(t0.body.access_token);
const id0 = decodeJwt(t0.body.id_token);
show('id token claims', id0.claims);
assert.equal(id0.claims.nonce, nonce);
assert.ok(t0.body.refresh_token, 'a refresh token for offline_access');

// ==================================================== 3. refresh, rotation, reuse
const t1 = await token({ grant_type: 'refresh_token', refresh_token: t0.body.refresh_token });
assert.equal(t1.status, 200, JSON.stringify(t1.body));
console.log('refresh #1 keys:', Object.keys(t1.body), 'new refresh token:', t1.body.refresh_token !== t0.body.refresh_token);
const t2 = await token({ grant_type: 'refresh_token', refresh_token: t1.body.refresh_token });
assert.equal(t2.status, 200, JSON.stringify(t2.body));
console.log('refresh #2 keys:', Object.keys(t2.body), 'new refresh token:', t2.body.refresh_token !== t1.body.refresh_token);
show('refreshed access token claims', decodeJwt(t2.body.access_token).claims);

// ==================================================== 4. key rotation
const oldKid = await verifyJwt(t2.body.id_token);
const started = Date.now();
const rotated = await (await fetch(new URL('/__test/rotate-keys', ISSUER), { method: 'POST' })).json();
console.log(`rotate-keys answered in ${Date.now() - started} ms:`, rotated, 'old kid:', oldKid);
const t3 = await token({ grant_type: 'refresh_token', refresh_token: t2.body.refresh_token });
assert.equal(t3.status, 200, JSON.stringify(t3.body));
const newKid = await verifyJwt(t3.body.id_token);
await verifyJwt(t3.body.access_token);
await verifyJwt(t2.body.id_token); // the old key is still published
console.log('id token kid after rotation:', newKid);
show('refreshed id token claims', decodeJwt(t3.body.id_token).claims);
assert.equal(newKid, rotated.kid);
assert.notEqual(newKid, oldKid);

// ==================================================== 5. reuse detection
const reuse = await token({ grant_type: 'refresh_token', refresh_token: t0.body.refresh_token });
console.log('reusing the first refresh token:', reuse.status, reuse.body);
assert.equal(reuse.body.error, 'invalid_grant');
const after = await token({ grant_type: 'refresh_token', refresh_token: t3.body.refresh_token });
console.log('the latest refresh token after that reuse:', after.status, after.body);

// ==================================================== 6. RP-initiated logout
const logoutState = b64url(crypto.randomBytes(8));
let res = await browse(meta.end_session_endpoint, {
  method: 'POST',
  form: { id_token_hint: t3.body.id_token, post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI, state: logoutState },
});
const confirmPage = await res.text();
const confirm = parseForm(confirmPage);
assert.ok(confirm, `logout answered ${res.status}: ${confirmPage.slice(0, 2000)}`);
console.log(`logout: ${res.status} confirmation form -> POST ${confirm.action}`, confirm.fields,
  '+ the "Yes" button logout=yes:', /name="logout"/.test(confirmPage));
res = await browse(new URL(confirm.action, ISSUER).href, { method: 'POST', form: { ...confirm.fields, logout: 'yes' } });
const back = new URL(res.headers.get('location'));
console.log(`logout confirm: ${res.status} -> ${back}`);
assert.equal(back.origin + back.pathname, POST_LOGOUT_REDIRECT_URI);
assert.equal(back.searchParams.get('state'), logoutState);

// ==================================================== 7. back-channel logout
const logoutToken = await Promise.race([logoutTokenArrived, new Promise((_, rej) => setTimeout(() => rej(new Error('no logout token')), 5000))]);
const lt = decodeJwt(logoutToken);
await verifyJwt(logoutToken);
show('logout token header', lt.header);
show('logout token claims', lt.claims);
assert.equal(lt.claims.sid, id0.claims.sid);

rp.close();
console.log('ALL OK');
