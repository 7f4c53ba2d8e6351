// An independent relying party: openid-client v6 against a live identity provider.
//
// It plays both roles a real deployment has: the relying party (discovery, PKCE,
// state, nonce, code grant, userinfo, refresh, revocation, RP-initiated logout)
// and, in place of a browser, the person (node fetch with a cookie jar: follow
// redirects to the hosted login page, read its CSRF token, post the form).
//
// Usage (flags or environment variables):
//   node rp.mjs --issuer URL --client-id ID [--client-secret S] --redirect-uri URI
//               --post-logout-redirect-uri URI --email E --password P [--scope S]
//               [--auth default|basic|post]
//   RP_ISSUER, RP_CLIENT_ID, RP_CLIENT_SECRET, RP_REDIRECT_URI,
//   RP_POST_LOGOUT_REDIRECT_URI, RP_EMAIL, RP_PASSWORD, RP_SCOPE, RP_AUTH
// Without a client secret the client is public (token_endpoint_auth_method none).
// With one, --auth default (the default) leaves the choice to openid-client, as most
// applications do (it sends client_secret_post); basic and post name the method.
// Prints one JSON summary on stdout; exits 1 on any failure (the summary then
// has "ok": false, "failed_step" and "error").

import { parseArgs } from 'node:util'
import * as client from 'openid-client'

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    'post-logout-redirect-uri': { type: 'string' },
    email: { type: 'string' },
    password: { type: 'string' },
    scope: { type: 'string' },
    auth: { type: 'string' },
  },
})

const env = process.env
const opts = {
  issuer: args.issuer ?? env.RP_ISSUER,
  clientId: args['client-id'] ?? env.RP_CLIENT_ID,
  clientSecret: args['client-secret'] ?? env.RP_CLIENT_SECRET ?? '',
  redirectUri: args['redirect-uri'] ?? env.RP_REDIRECT_URI,
  postLogoutRedirectUri: args['post-logout-redirect-uri'] ?? env.RP_POST_LOGOUT_REDIRECT_URI,
  email: args.email ?? env.RP_EMAIL,
  password: args.password ?? env.RP_PASSWORD,
  scope: args.scope ?? env.RP_SCOPE ?? 'openid profile email',
  auth: args.auth ?? env.RP_AUTH ?? 'default',
}

const summary = { ok: false, steps: [] }
let currentStep = 'arguments'

function fail(message) {
  throw new Error(message)
}

function check(condition, message) {
  if (!condition) fail(message)
}

async function step(name, fn) {
  currentStep = name
  const result = await fn()
  summary.steps.push(name)
  return result
}

// ---------------------------------------------------------------- the "browser"

class CookieJar {
  constructor() {
    this.cookies = new Map() // name -> { value, host, path }
  }

  store(url, response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attributes] = header.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = '/'
      let expired = value === ''
      for (const attribute of attributes) {
        const [key, val = ''] = attribute.split('=')
        const k = key.trim().toLowerCase()
        if (k === 'path') path = val.trim() || '/'
        if (k === 'max-age' && Number(val) <= 0) expired = true
        if (k === 'expires' && Date.parse(val) <= Date.now()) expired = true
      }
      if (expired) this.cookies.delete(name)
      else this.cookies.set(name, { value, host: url.hostname, path })
    }
  }

  header(url) {
    const parts = []
    for (const [name, c] of this.cookies) {
      if (c.host === url.hostname && url.pathname.startsWith(c.path)) parts.push(`${name}=${c.value}`)
    }
    return parts.join('; ')
  }

  names() {
    return [...this.cookies.keys()]
  }
}

const jar = new CookieJar()

async function browserFetch(url, init = {}) {
  const headers = new Headers(init.headers)
  const cookie = jar.header(url)
  if (cookie) headers.set('cookie', cookie)
  headers.set('accept', 'text/html,application/xhtml+xml')
  headers.set('accept-language', 'en')
  const response = await fetch(url, { ...init, headers, redirect: 'manual' })
  jar.store(url, response)
  return response
}

function isRedirect(response) {
  return [301, 302, 303, 307, 308].includes(response.status)
}

function htmlUnescape(text) {
  return text
    .replaceAll('&#34;', '"').replaceAll('&#39;', "'").replaceAll('&quot;', '"')
    .replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&')
}

function attribute(tag, name) {
  const match = tag.match(new RegExp(`\\s${name}="([^"]*)"`, 'i'))
  return match ? htmlUnescape(match[1]) : null
}

// Finds the form that has a password input, its action and its CSRF token.
function parseLoginForm(html, pageUrl) {
  for (const form of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const inputs = [...form[2].matchAll(/<input\b[^>]*>/gi)].map((m) => m[0])
    const byName = (n) => inputs.find((tag) => attribute(tag, 'name') === n)
    if (!byName('password') || !byName('email')) continue
    const csrf = byName('csrf_token')
    check(csrf, 'the login form has no csrf_token input')
    const action = attribute(`<form${form[1]}>`, 'action') || pageUrl.href
    return { action: new URL(action, pageUrl), csrfToken: attribute(csrf, 'value') }
  }
  return null
}

function startsWithUri(url, uri) {
  const target = new URL(uri)
  return url.origin === target.origin && url.pathname === target.pathname
}

// Follows redirects from `url` like a browser until one points at `stopAt`
// (returned, not fetched). A login page met on the way is filled and posted.
async function navigate(url, stopAt, { login = false, maxHops = 20 } = {}) {
  const visited = []
  let response = await browserFetch(url)
  let current = url
  let loggedIn = false
  for (let hop = 0; hop < maxHops; hop++) {
    visited.push(`${response.status} ${current.pathname}`)
    if (isRedirect(response)) {
      const next = new URL(response.headers.get('location'), current)
      if (startsWithUri(next, stopAt)) return { url: next, visited, loggedIn }
      current = next
      response = await browserFetch(current)
      continue
    }
    const body = await response.text()
    check(response.status === 200, `unexpected ${response.status} at ${current.href}: ${body.slice(0, 300)}`)
    const form = login && !loggedIn ? parseLoginForm(body, current) : null
    check(form, `stuck at ${current.href} (no redirect, no login form): ${body.slice(0, 300)}`)
    const page = current
    current = form.action
    response = await browserFetch(current, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', referer: page.href },
      body: new URLSearchParams({ email: opts.email, password: opts.password, csrf_token: form.csrfToken }),
    })
    check(response.status !== 400, `login refused at ${current.href} (wrong credentials or CSRF)`)
    loggedIn = true
  }
  fail(`too many redirects: ${visited.join(' -> ')}`)
}

// ---------------------------------------------------------------- the relying party

async function main() {
  for (const key of ['issuer', 'clientId', 'redirectUri', 'postLogoutRedirectUri', 'email', 'password']) {
    check(opts[key], `missing argument: ${key}`)
  }
  const isPublic = !opts.clientSecret
  check(['default', 'basic', 'post'].includes(opts.auth), `unknown --auth: ${opts.auth}`)
  summary.client = { client_id: opts.clientId, public: isPublic, auth: isPublic ? 'none' : opts.auth }

  const config = await step('discovery', async () => {
    // 'default': the secret as client metadata and no method, so openid-client picks.
    const methods = {
      basic: () => client.ClientSecretBasic(opts.clientSecret),
      post: () => client.ClientSecretPost(opts.clientSecret),
      default: () => undefined,
    }
    const auth = isPublic ? client.None() : methods[opts.auth]()
    const clientMetadata = isPublic ? undefined : opts.clientSecret
    const c = await client.discovery(new URL(opts.issuer), opts.clientId, clientMetadata, auth, {
      execute: [client.allowInsecureRequests],
    })
    const metadata = c.serverMetadata()
    check(metadata.issuer === opts.issuer, `issuer mismatch: ${metadata.issuer}`)
    check(metadata.supportsPKCE('S256'), 'discovery does not advertise PKCE S256')
    check(metadata.end_session_endpoint, 'discovery has no end_session_endpoint')
    summary.discovery = {
      issuer: metadata.issuer,
      authorization_endpoint: metadata.authorization_endpoint,
      token_endpoint: metadata.token_endpoint,
      end_session_endpoint: metadata.end_session_endpoint,
      iss_parameter_supported: metadata.authorization_response_iss_parameter_supported === true,
    }
    return c
  })

  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()

  const authorizationUrl = await step('authorization_url', async () =>
    client.buildAuthorizationUrl(config, {
      redirect_uri: opts.redirectUri,
      scope: opts.scope,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    }))

  const callback = await step('browser_login', async () => {
    const result = await navigate(authorizationUrl, opts.redirectUri, { login: true })
    check(result.loggedIn, 'never saw the hosted login page')
    check(!result.url.searchParams.get('error'),
      `authorization error: ${result.url.searchParams.get('error')} ${result.url.searchParams.get('error_description')}`)
    summary.callback = {
      has_code: Boolean(result.url.searchParams.get('code')),
      state_matches: result.url.searchParams.get('state') === state,
      iss: result.url.searchParams.get('iss'),
      path: result.visited,
      cookies: jar.names(),
    }
    check(summary.callback.has_code, 'no code in the callback')
    check(summary.callback.iss === opts.issuer, `callback iss is ${summary.callback.iss}`)
    return result.url
  })

  const tokens = await step('authorization_code_grant', async () => {
    const t = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    })
    const claims = t.claims()
    check(claims, 'no ID token')
    check(claims.nonce === nonce, 'nonce mismatch')
    summary.id_token = {
      iss: claims.iss, aud: claims.aud, sub: claims.sub, nonce_matches: claims.nonce === nonce,
      email: claims.email, amr: claims.amr, acr: claims.acr, sid: claims.sid,
      org_slug: claims.org_slug,
    }
    summary.token_response = {
      token_type: t.token_type, expires_in: t.expires_in, scope: t.scope,
      has_refresh_token: Boolean(t.refresh_token),
    }
    return t
  })

  await step('userinfo', async () => {
    const info = await client.fetchUserInfo(config, tokens.access_token, summary.id_token.sub)
    summary.userinfo = info
  })

  const refreshed = await step('refresh_token_grant', async () => {
    check(tokens.refresh_token, 'no refresh token to refresh with')
    const r = await client.refreshTokenGrant(config, tokens.refresh_token)
    summary.refresh = {
      access_token_changed: r.access_token !== tokens.access_token,
      refresh_token_rotated: Boolean(r.refresh_token) && r.refresh_token !== tokens.refresh_token,
      has_id_token: Boolean(r.id_token),
      sub: r.claims()?.sub ?? null,
    }
    // The new access token works at userinfo too.
    const info = await client.fetchUserInfo(config, r.access_token, summary.id_token.sub)
    summary.refresh.userinfo_email = info.email
    return r
  })

  await step('revocation', async () => {
    const current = refreshed.refresh_token || tokens.refresh_token
    await client.tokenRevocation(config, current, { token_type_hint: 'refresh_token' })
    summary.revocation = { revoked: true }
    try {
      await client.refreshTokenGrant(config, current)
      summary.revocation.refused_after = false
    } catch (error) {
      summary.revocation.refused_after = true
      summary.revocation.error = error.error ?? error.code ?? error.message
    }
    check(summary.revocation.refused_after, 'a revoked refresh token was accepted')
  })

  await step('end_session', async () => {
    const logoutState = client.randomState()
    const idTokenHint = refreshed.id_token || tokens.id_token
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: idTokenHint,
      post_logout_redirect_uri: opts.postLogoutRedirectUri,
      state: logoutState,
    })
    const result = await navigate(url, opts.postLogoutRedirectUri)
    summary.logout = {
      landed: result.url.origin + result.url.pathname,
      state_matches: result.url.searchParams.get('state') === logoutState,
      path: result.visited,
    }
    check(summary.logout.state_matches, 'logout state mismatch')
    // The browser session is over: a silent authorization request must now fail.
    const silent = client.buildAuthorizationUrl(config, {
      redirect_uri: opts.redirectUri, scope: 'openid', prompt: 'none',
      state: client.randomState(),
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    })
    const after = await navigate(silent, opts.redirectUri)
    summary.logout.prompt_none_error = after.url.searchParams.get('error')
    check(summary.logout.prompt_none_error === 'login_required',
      `after logout, prompt=none answered ${after.url.search}`)
  })

  summary.ok = true
}

try {
  await main()
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
} catch (error) {
  summary.ok = false
  summary.failed_step = currentStep
  summary.error = {
    name: error?.name, message: error?.message, code: error?.code, error: error?.error,
    error_description: error?.error_description, status: error?.status,
    cause: error?.cause ? String(error.cause?.message ?? error.cause) : undefined,
  }
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
  process.exitCode = 1
}
