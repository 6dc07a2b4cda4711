// A certified OpenID Provider (panva/node-oidc-provider) for interop tests.
//
// The Rust integration tests start this file as a child process, wait for the
// line `ready <issuer>` on stdout, and run the BFF (a relying party) and the
// API (a resource server) against it. Everything is configured through the
// environment (see README.md); nothing here is meant for production.
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';
// The library's own in-memory adapter (not a public export; the version is
// pinned). One store for every Provider instance we create, see rotation.
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

// stdout carries only the `ready` line; the library's notices go to stderr.
console.info = console.error;

// ---------------------------------------------------------------- settings
const PORT = Number(process.env.OP_PORT ?? 9100);
const ISSUER = process.env.OP_ISSUER ?? `http://localhost:${PORT}`;
const AUDIENCE = process.env.OP_ACCESS_TOKEN_AUDIENCE ?? 'api://default';
const ACCESS_TOKEN_TTL = Number(process.env.OP_ACCESS_TOKEN_TTL ?? 300);
// Without OP_CLIENTS, one client that drive-login.mjs uses.
const CLIENTS = JSON.parse(process.env.OP_CLIENTS ?? JSON.stringify([{
  client_id: 'bff-demo',
  client_secret: 'bff-demo-secret',
  redirect_uris: ['http://localhost:3999/cb'],
  post_logout_redirect_uris: ['http://localhost:3999/'],
  backchannel_logout_uri: 'http://localhost:3999/backchannel',
  backchannel_logout_session_required: true,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
}]));

// ---------------------------------------------------------------- keys
// One RSA key, as a private JWK. Its kid is the RFC 7638 thumbprint.
function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const kid = crypto.hash('sha256', JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }), 'base64url');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

// The provider signs with the first key that fits, and publishes them all.
let signingKeys = [newSigningKey()];
// Cookie-signing keys and storage are shared by every provider instance, so
// sessions, interactions, grants and tokens survive a key rotation.
const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
const adapter = createMemoryAdapter();

// ---------------------------------------------------------------- accounts
// Any login id is a user; its claims are derived from it.
async function findAccount(_ctx, id) {
  return {
    accountId: id,
    async claims() {
      return { sub: id, email: id, email_verified: true, name: id };
    },
  };
}

// ---------------------------------------------------------------- provider
function makeProvider(jwks) {
  const resourceServer = {
    scope: 'notes:read notes:write',
    audience: AUDIENCE,
    accessTokenTTL: ACCESS_TOKEN_TTL,
    accessTokenFormat: 'jwt', // RFC 9068: header typ "at+jwt"
    jwt: { sign: { alg: 'RS256' } },
  };

  const provider = new Provider(ISSUER, {
    clients: CLIENTS,
    adapter,
    jwks: { keys: jwks },
    findAccount,
    // POST to the authorization and end_session endpoints (OIDC allows both
    // methods). The library then insists on SameSite=None for the session
    // cookie; over plain http it goes out without Secure, which HTTP clients
    // accept (a real browser may drop it).
    enableHttpPostMethods: true,
    cookies: { keys: cookieKeys, long: { sameSite: 'none' } },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
      acr: null, sid: null, auth_time: null, iss: null,
    },
    // The library refuses outgoing requests (back-channel logout, jwks_uri)
    // to special-use addresses such as 127.0.0.1, against SSRF. Our clients
    // all live on loopback, so drop its guarding dispatcher.
    fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
    pkce: { required: () => true }, // every client; the library only knows S256
    rotateRefreshToken: true, // a new refresh token on every use
    // A refresh token whenever offline_access was granted (the library default,
    // spelled out). OIDC Core 11: offline_access counts only in a request with
    // prompt=consent, so a client that wants refresh tokens sends it (the BFF:
    // --authorize-param prompt=consent).
    issueRefreshToken: async (_ctx, client, source) =>
      client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access'),
    responseTypes: ['code'], // authorization code flow only
    features: {
      devInteractions: { enabled: true }, // built-in login and consent pages
      claimsParameter: { enabled: false },
      revocation: { enabled: true },
      introspection: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Every authorization request is for our API, `resource` or not...
        defaultResource: async () => AUDIENCE,
        // ...and so is every token request (code and refresh) that names none.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== AUDIENCE) throw new errors.InvalidTarget();
          return resourceServer;
        },
      },
    },
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      IdToken: 300,
      RefreshToken: 24 * 60 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
      Interaction: 60 * 60,
    },
  });

  // What the tests count: successful token requests, by grant type.
  provider.on('grant.success', (ctx) => {
    const grantType = ctx.oidc.params.grant_type;
    grants[grantType] = (grants[grantType] ?? 0) + 1;
  });
  // Log back-channel logout failures; they are otherwise silent.
  provider.on('backchannel.error', (_ctx, err, client) => {
    console.error(`backchannel logout to ${client.clientId} failed: ${err.message}`);
  });
  provider.on('server_error', (_ctx, err) => console.error(err));
  return provider;
}

/** Successful token requests by grant type, for GET /__test/grants. */
const grants = {};

let provider = makeProvider(signingKeys);
let handle = provider.callback();

// ---------------------------------------------------------------- test admin
// POST /__test/rotate-keys: a new key signs from now on; the old ones stay in
// the JWKS so that tokens signed earlier still verify. GET /__test/grants:
// how many token requests of each grant type succeeded.
function rotateKeys() {
  signingKeys = [newSigningKey(), ...signingKeys];
  provider = makeProvider(signingKeys);
  handle = provider.callback();
  return signingKeys[0].kid;
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

// An issuer with a path (e.g. http://localhost:9100/oauth2/default) mounts
// the provider there, the way Express would: the provider reads the mount
// path from req.originalUrl minus req.url.
const MOUNT = new URL(ISSUER).pathname.replace(/\/$/, '');

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/__test/health' && req.method === 'GET') return json(res, 200, { status: 'ok' });
  if (path === '/__test/rotate-keys' && req.method === 'POST') return json(res, 200, { kid: rotateKeys() });
  if (path === '/__test/grants' && req.method === 'GET') return json(res, 200, grants);
  if (MOUNT) {
    if (path !== MOUNT && !path.startsWith(`${MOUNT}/`)) return json(res, 404, { error: 'not_found' });
    req.originalUrl = req.url;
    req.url = req.url.slice(MOUNT.length) || '/';
  }
  return handle(req, res);
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`ready ${ISSUER}`);
});
