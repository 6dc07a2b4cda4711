// A certified relying party, openid-client, against our mock IdP.
//
//   node rp.mjs <issuer>
//
// Environment: RP_CLIENT_ID, RP_CLIENT_SECRET (absent: a public client,
// token_endpoint_auth_method "none"), RP_REDIRECT_URI,
// RP_POST_LOGOUT_REDIRECT_URI, RP_USERNAME, RP_PASSWORD.
//
// Every protocol step is openid-client's own code: discovery, the
// authorization URL with PKCE, the checks of the callback and of the token
// response, ID token validation, userinfo, refresh, revocation,
// introspection, the end-session URL. This file only plays the browser
// (follows redirects, fills in the IdP's sign-in and consent forms) and
// reports: one JSON object on stdout, {"ok", "steps": [{name, ok, detail}]},
// and exit code 0 only when every step passed. It never prints a token, a
// code, a verifier or a secret. Each HTTP request is traced on stderr as
// method, path and status, with no query string and no body.

import { createHash } from 'node:crypto'
import * as client from 'openid-client'

const SCOPE = 'openid profile email offline_access notes:read'

const env = process.env
const required = ['RP_CLIENT_ID', 'RP_REDIRECT_URI', 'RP_POST_LOGOUT_REDIRECT_URI', 'RP_USERNAME', 'RP_PASSWORD']
const missing = required.filter((name) => !env[name])
if (!process.argv[2] || missing.length > 0) {
  console.error(`usage: node rp.mjs <issuer>
environment: ${required.join(', ')}, and RP_CLIENT_SECRET for a confidential client
missing: ${[process.argv[2] ? [] : ['<issuer>'], ...missing].flat().join(', ')}`)
  process.exit(2)
}
const settings = {
  issuer: process.argv[2],
  clientId: env.RP_CLIENT_ID,
  redirectUri: env.RP_REDIRECT_URI,
  postLogoutRedirectUri: env.RP_POST_LOGOUT_REDIRECT_URI,
  username: env.RP_USERNAME,
  password: env.RP_PASSWORD,
}
const secret = env.RP_CLIENT_SECRET || undefined
const confidential = secret !== undefined

// ---------------------------------------------------------------- report

const steps = []
class Stop extends Error {}

// Runs one step; its function returns the detail to show, or throws.
// The first failure stops the run: later steps depend on earlier ones.
async function step(name, run) {
  try {
    steps.push({ name, ok: true, detail: await run() })
  } catch (error) {
    steps.push({ name, ok: false, detail: describe(error) })
    throw new Stop()
  }
}

// What an error says, without anything secret: openid-client's errors
// carry the OAuth error code, its description and the HTTP status; its
// cause may hold the claims or the whole response body, so only the name
// of the offending claim is taken from it.
function describe(error) {
  const parts = [`${error.name}: ${error.message}`]
  // openid-client wraps the check that failed as the cause of a ClientError.
  if (error.cause instanceof Error) parts.push(`cause ${error.cause.name}: ${error.cause.message}`)
  if (error.code) parts.push(`code ${error.code}`)
  if (error.error) parts.push(`error ${error.error}`)
  if (error.error_description) parts.push(`error_description "${error.error_description}"`)
  if (error.status) parts.push(`HTTP ${error.status}`)
  const claim = error.cause?.claim ?? error.cause?.cause?.claim
  if (typeof claim === 'string') parts.push(`claim ${claim}`)
  // A 401 with WWW-Authenticate: openid-client reports the challenges.
  if (error instanceof client.WWWAuthenticateChallengeError) {
    const challenges = error.cause.map((c) => `${c.scheme}${c.parameters.error ? ` error=${c.parameters.error}` : ''}`)
    parts.push(`WWW-Authenticate ${challenges.join(', ')}`)
  }
  return parts.join('; ')
}

function check(condition, message) {
  if (!condition) throw new Error(message)
}

// Awaits a request the IdP must refuse; returns openid-client's error for it.
async function refused(request) {
  try {
    await request
  } catch (error) {
    if (error instanceof client.ResponseBodyError) return error
    throw error
  }
  throw new Error('the IdP accepted it')
}

function trace(method, url, status) {
  console.error(`${method} ${new URL(url).pathname} -> ${status}`)
}

// ---------------------------------------------------------------- browser

// A tiny cookie jar: name=value per host, which is all the IdP's cookies
// need. (They are `Secure`; browsers send those to http://localhost too.)
const jar = new Map()

function cookiesFor(url) {
  const cookies = jar.get(new URL(url).host) ?? new Map()
  return [...cookies].map(([name, value]) => `${name}=${value}`).join('; ')
}

function keepCookies(url, response) {
  const host = new URL(url).host
  if (!jar.has(host)) jar.set(host, new Map())
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(';')
    const name = pair.slice(0, pair.indexOf('=')).trim()
    const value = pair.slice(pair.indexOf('=') + 1).trim()
    const expired = attributes.some((a) => /^\s*max-age\s*=\s*(-?\d+)\s*$/i.exec(a)?.[1] <= 0)
    if (expired) jar.get(host).delete(name)
    else jar.get(host).set(name, value)
  }
}

// One request as the browser makes it: its cookies, no automatic redirects.
async function browserFetch(url, { method = 'GET', body } = {}) {
  const headers = { cookie: cookiesFor(url) }
  if (body) headers['content-type'] = 'application/x-www-form-urlencoded'
  const response = await fetch(url, { method, body, headers, redirect: 'manual' })
  trace(method, url, response.status)
  keepCookies(url, response)
  return response
}

const entities = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'", '#x2F': '/' }
const unescape = (text) => text.replace(/&(#?\w+);/g, (all, e) => entities[e] ?? all)
const attribute = (tag, name) => {
  const found = new RegExp(`\\b${name}="([^"]*)"`).exec(tag)
  return found && unescape(found[1])
}

// The page's form: where it posts, and its hidden fields (tx and csrf).
function readForm(html) {
  const form = /<form\b[^>]*>/.exec(html)
  check(form, 'the page has no form')
  const fields = {}
  for (const [input] of html.matchAll(/<input\b[^>]*>/g)) {
    if (attribute(input, 'type') === 'hidden') fields[attribute(input, 'name')] = attribute(input, 'value')
  }
  return { action: attribute(form[0], 'action'), fields }
}

const isRedirectTo = (url, target) => `${url.origin}${url.pathname}` === new URL(target).href

// From the authorization URL to the redirect URI, as a person in a browser:
// follows the IdP's redirects, signs in and allows on the consent page.
// Returns the full callback URL and the paths of the pages on the way.
async function browseToCallback(authorizationUrl) {
  let url = new URL(authorizationUrl)
  let request = {}
  const pages = []
  for (let hop = 0; hop < 10; hop++) {
    if (isRedirectTo(url, settings.redirectUri)) return { callback: url, pages }
    const response = await browserFetch(url, request)
    const location = response.headers.get('location')
    if (response.status >= 300 && response.status < 400 && location) {
      url = new URL(location, url)
      request = {}
      continue
    }
    check(response.status === 200, `${request.method ?? 'GET'} ${url.pathname} answered ${response.status}`)
    const { action, fields } = readForm(await response.text())
    if (url.pathname === '/signin') {
      Object.assign(fields, { username: settings.username, password: settings.password })
    } else if (url.pathname === '/consent') {
      fields.decision = 'allow'
    } else {
      throw new Error(`unexpected page ${url.pathname}`)
    }
    pages.push(url.pathname)
    url = new URL(action, url)
    request = { method: 'POST', body: new URLSearchParams(fields).toString() }
  }
  throw new Error('too many redirects')
}

// ---------------------------------------------------------------- helpers

// A fresh authorization request: PKCE S256, state and nonce, all from
// openid-client. `extra` adds parameters such as prompt=none.
async function authorizationRequest(config, extra = {}) {
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: settings.redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  })
  return { url, verifier, state, nonce }
}

// The callback URL to openid-client: it checks iss (RFC 9207) and state,
// exchanges the code with the verifier, and validates the ID token
// (signature against the JWKS, iss, aud, exp, iat, nonce).
function codeGrant(config, callback, request) {
  return client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
    idTokenExpected: true,
  })
}

// The JOSE header of a JWT: which key (kid) and algorithm signed it.
const joseHeader = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url'))

// OIDC Core 3.1.3.6 at_hash for RS256/ES256: left half of SHA-256, base64url.
const atHash = (accessToken) =>
  createHash('sha256').update(accessToken).digest().subarray(0, 16).toString('base64url')

// ---------------------------------------------------------------- the run

async function run() {
  let config
  await step('discovery', async () => {
    config = await client.discovery(
      new URL(settings.issuer),
      settings.clientId,
      undefined,
      confidential ? client.ClientSecretBasic(secret) : client.None(),
      {
        execute: [
          // Our issuer is http://localhost: openid-client needs leave for that.
          client.allowInsecureRequests,
          // Verify ID token signatures against the JWKS even on the back channel.
          client.enableNonRepudiationChecks,
        ],
        [client.customFetch]: async (url, options) => {
          const response = await fetch(url, options)
          trace(options.method, url, response.status)
          return response
        },
      },
    )
    const metadata = config.serverMetadata()
    check(metadata.supportsPKCE('S256'), 'metadata does not list PKCE S256')
    return `issuer ${metadata.issuer}; auth ${confidential ? 'client_secret_basic' : 'none'}; ` +
      `RFC 9207 iss supported: ${metadata.authorization_response_iss_parameter_supported === true}`
  })

  let login
  await step('authorization_url', async () => {
    login = await authorizationRequest(config)
    const params = [...login.url.searchParams.keys()].sort()
    check(login.url.searchParams.get('code_challenge_method') === 'S256', 'no S256')
    return `${login.url.origin}${login.url.pathname} with ${params.join(', ')}`
  })

  let callback
  await step('browser_sign_in_and_consent', async () => {
    const { callback: url, pages } = await browseToCallback(login.url)
    callback = url
    return `pages ${pages.join(' -> ')}; back at the redirect URI with ` +
      [...callback.searchParams.keys()].sort().join(', ')
  })

  let tokens
  let claims
  await step('authorization_code_grant', async () => {
    tokens = await codeGrant(config, callback, login)
    claims = tokens.claims()
    const { kid, alg } = joseHeader(tokens.id_token)
    check(tokens.refresh_token, 'no refresh token for offline_access')
    return `ID token valid (kid ${kid}, alg ${alg}), claims ${Object.keys(claims).sort().join(', ')}; ` +
      `token_type ${tokens.token_type}, expires_in ${tokens.expires_in}, scope "${tokens.scope}", refresh token: yes`
  })

  // In the code flow at_hash is optional (OIDC Core 3.1.3.8: the client MAY
  // check it) and openid-client does not. We check it here, outside the
  // library, because other relying parties do.
  await step('id_token_at_hash', async () => {
    check(claims.at_hash === atHash(tokens.access_token), 'at_hash does not match the access token')
    return 'at_hash matches the access token (checked by this script, not by openid-client)'
  })

  await step('userinfo', async () => {
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    return `sub matches the ID token; claims ${Object.keys(userinfo).sort().join(', ')}`
  })

  if (confidential) {
    await step('token_introspection', async () => {
      const access = await client.tokenIntrospection(config, tokens.access_token)
      const refresh = await client.tokenIntrospection(config, tokens.refresh_token)
      check(access.active === true && access.sub === claims.sub, 'access token not active for this sub')
      check(access.client_id === settings.clientId, 'access token of another client')
      check(refresh.active === true, 'refresh token not active')
      return `access token active (sub matches, client_id ${access.client_id}, scope "${access.scope}"); ` +
        `refresh token active (token_type ${refresh.token_type})`
    })
  }

  // RFC 9700 4.14.2: each refresh answers with a new refresh token...
  const first = tokens.refresh_token
  let rotated
  await step('refresh_token_rotation', async () => {
    rotated = await client.refreshTokenGrant(config, first)
    check(rotated.refresh_token && rotated.refresh_token !== first, 'the refresh token did not change')
    const detail = ['new access token', 'new refresh token']
    if (rotated.id_token) {
      check(rotated.claims().sub === claims.sub, 'the new ID token has another sub')
      detail.push('new ID token valid, same sub')
    }
    return detail.join('; ')
  })

  // ...and the old one, used again, is refused.
  await step('refresh_token_reuse_refused', async () => {
    const error = await refused(client.refreshTokenGrant(config, first))
    check(error.error === 'invalid_grant', `expected invalid_grant, got ${error.error}`)
    return `old refresh token refused: HTTP ${error.status} ${error.error} "${error.error_description}"`
  })

  // Reuse means theft: the IdP revokes the whole family, the token that
  // replaced the reused one too.
  await step('refresh_token_family_revoked_after_reuse', async () => {
    const error = await refused(client.refreshTokenGrant(config, rotated.refresh_token))
    check(error.error === 'invalid_grant', `expected invalid_grant, got ${error.error}`)
    return `its successor refused too: ${error.error} "${error.error_description}"`
  })

  // Revocation needs a live refresh token: a second sign-in gets a new
  // family. The IdP session is still there and consent remembered, so
  // prompt=none answers with a code at once (single sign-on).
  let again
  await step('silent_reauthorization', async () => {
    const request = await authorizationRequest(config, { prompt: 'none' })
    const { callback: url, pages } = await browseToCallback(request.url)
    check(pages.length === 0, `pages shown: ${pages.join(', ')}`)
    again = await codeGrant(config, url, request)
    check(again.claims().sub === claims.sub, 'another sub')
    check(again.refresh_token, 'no refresh token')
    return 'prompt=none: code at once, no page shown; tokens for the same sub, ID token valid'
  })

  await step('token_revocation', async () => {
    await client.tokenRevocation(config, again.refresh_token, { token_type_hint: 'refresh_token' })
    const error = await refused(client.refreshTokenGrant(config, again.refresh_token))
    check(error.error === 'invalid_grant', `expected invalid_grant, got ${error.error}`)
    const detail = [`revoked; a refresh with it is refused: ${error.error} "${error.error_description}"`]
    if (confidential) {
      const answer = await client.tokenIntrospection(config, again.refresh_token)
      check(answer.active === false, 'introspection still says active')
      detail.push('introspection says active: false')
    }
    return detail.join('; ')
  })

  // OIDC RP-Initiated Logout 1.0, in the browser that holds the IdP session.
  const idpHost = new URL(settings.issuer).host
  const cookiesBeforeLogout = new Map(jar.get(idpHost))
  await step('end_session', async () => {
    const logoutState = client.randomState()
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: again.id_token,
      post_logout_redirect_uri: settings.postLogoutRedirectUri,
      state: logoutState,
    })
    const response = await browserFetch(url)
    const location = response.headers.get('location')
    check(response.status >= 300 && response.status < 400 && location,
      `answered ${response.status} without a redirect (is the post-logout redirect URI registered?)`)
    const target = new URL(location, url)
    check(isRedirectTo(target, settings.postLogoutRedirectUri), 'redirected somewhere else')
    check(target.searchParams.get('state') === logoutState, 'state did not come back')
    return `HTTP ${response.status} to the post-logout redirect URI with the same state`
  })

  // The session is over: prompt=none now comes back with login_required,
  // which openid-client reads from the callback (checking state and iss)
  // and throws as an AuthorizationResponseError. Tried with the browser's
  // cookies, and with the session cookie from before the logout replayed
  // (the IdP ended the session itself, not just the cookie).
  await step('session_ended', async () => {
    const results = []
    const tries = { 'browser cookies': jar.get(idpHost), 'pre-logout cookies': cookiesBeforeLogout }
    for (const [name, cookies] of Object.entries(tries)) {
      jar.set(idpHost, new Map(cookies))
      const request = await authorizationRequest(config, { prompt: 'none' })
      const { callback: url, pages } = await browseToCallback(request.url)
      check(pages.length === 0, `pages shown: ${pages.join(', ')}`)
      let error
      try {
        await codeGrant(config, url, request)
      } catch (e) {
        error = e
      }
      check(error instanceof client.AuthorizationResponseError, `not an error response: ${error && describe(error)}`)
      check(error.error === 'login_required', `expected login_required, got ${error.error}`)
      results.push(`${name}: ${error.error}`)
    }
    return `prompt=none answered error=login_required (${results.join('; ')})`
  })
}

try {
  await run()
} catch (error) {
  if (!(error instanceof Stop)) steps.push({ name: 'unexpected', ok: false, detail: describe(error) })
}
const ok = steps.length > 0 && steps.every((s) => s.ok)
console.log(JSON.stringify({ ok, steps }, null, 2))
process.exitCode = ok ? 0 : 1
