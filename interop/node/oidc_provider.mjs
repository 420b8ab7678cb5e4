// A real OpenID Provider (npm `oidc-provider`) for tests and benchmarks, on 127.0.0.1.
//
// Usage: node oidc_provider.mjs [--mode login|client-credentials] [--port N] [--ignore-stdin]
//
// Environment:
//   OIDC_PORT      port to listen on (default 0: any free port); --port wins
//   OIDC_CLIENTS   JSON array of client metadata (client_id, client_secret, redirect_uris,
//                  token_endpoint_auth_method, ...). Defaults per mode are filled in.
//   OIDC_MODE      `login` (default) or `client-credentials`; --mode wins
//   OIDC_TLS_CERT, OIDC_TLS_KEY
//                  PEM files of a certificate chain (leaf first, naming 127.0.0.1) and its
//                  key: given both, the provider serves HTTPS and its issuer is
//                  https://127.0.0.1:<port>; else plain HTTP, http://127.0.0.1:<port>
//
// Modes:
//   login               authorization code flow, PKCE (S256) required for every client,
//                       devInteractions on: GET the interaction page, POST the login form
//                       (`prompt=login`, any `login`/`password`), then POST the consent form
//                       (`prompt=consent`) to the same URL. The account id is the login name;
//                       its claims are sub, email, email_verified, name, given_name,
//                       family_name, all in the ID token.
//   client-credentials  the client_credentials grant issuing JWT access tokens (ES256) for
//                       the resource `https://api.example.test` (the default resource).
//
// When ready it prints one line of JSON on stdout: {"issuer": "...", "port": N}.
// It exits on SIGTERM/SIGINT and when its stdin closes (unless --ignore-stdin), so a parent
// that dies takes it along.

import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { parseArgs } from 'node:util';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const RESOURCE = 'https://api.example.test';

const { values: args } = parseArgs({
  options: {
    mode: { type: 'string' },
    port: { type: 'string' },
    'ignore-stdin': { type: 'boolean' },
  },
});

const mode = args.mode ?? process.env.OIDC_MODE ?? 'login';
if (mode !== 'login' && mode !== 'client-credentials') {
  console.error(`unknown mode ${mode}: use login or client-credentials`);
  process.exit(2);
}
const port = Number.parseInt(args.port ?? process.env.OIDC_PORT ?? '0', 10);

function clients() {
  const given = JSON.parse(process.env.OIDC_CLIENTS ?? '[]');
  if (!Array.isArray(given)) {
    throw new Error('OIDC_CLIENTS must be a JSON array of client metadata');
  }
  if (mode === 'client-credentials') {
    return given.map((client) => ({
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
    }));
  }
  return given.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  }));
}

async function signingKeys() {
  const keys = [];
  for (const [alg, kid] of [['RS256', 'rs256-1'], ['ES256', 'es256-1']]) {
    const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    keys.push({ ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' });
  }
  return keys;
}

function account(id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: `${id}@example.test`,
        email_verified: true,
        name: `Test User ${id}`,
        given_name: 'Test',
        family_name: id,
      };
    },
  };
}

const tlsFiles = [process.env.OIDC_TLS_CERT, process.env.OIDC_TLS_KEY];
if (tlsFiles.filter(Boolean).length === 1) {
  console.error('set both OIDC_TLS_CERT and OIDC_TLS_KEY, or neither');
  process.exit(2);
}
const tls = tlsFiles.every(Boolean);
const server = tls
  ? https.createServer({ cert: readFileSync(tlsFiles[0]), key: readFileSync(tlsFiles[1]) })
  : http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: clients(),
  jwks: { keys: await signingKeys() },
  cookies: { keys: [jose.base64url.encode(crypto.getRandomValues(new Uint8Array(32)))] },
  findAccount: async (_ctx, id) => account(id),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
  },
  // Claims of the granted scopes go into the ID token, not only the userinfo response.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  ttl: {
    AccessToken: 300,
    AuthorizationCode: 60,
    ClientCredentials: 300,
    Grant: 3600,
    IdToken: 300,
    Interaction: 600,
    Session: 3600,
  },
  features: {
    devInteractions: { enabled: mode === 'login' },
    clientCredentials: { enabled: mode === 'client-credentials' },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => (mode === 'client-credentials' ? RESOURCE : undefined),
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== RESOURCE) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: 'api:read api:write',
          audience: RESOURCE,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});

server.on('request', provider.callback());

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (!args['ignore-stdin']) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({ issuer, port: server.address().port })}\n`);
