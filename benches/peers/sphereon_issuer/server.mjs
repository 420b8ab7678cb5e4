// An OpenID4VCI issuer built with @sphereon/oid4vci-issuer-server 0.20: pre-authorized code
// flow, its own token endpoint (ES256 JWT access tokens), a nonce endpoint, and dc+sd-jwt
// credentials (ES256, every one of the ten top-level claims selectively disclosable, bound to
// the key of the wallet's JWT proof). The JWT callbacks verify signatures with `jose`.
//
// Usage: PORT=<port> node server.mjs   (prints "listening <base URL>" once it accepts)
//
// Offers: POST <base>/webapp/credential-offers with
//   {"credential_configuration_ids": ["identity"],
//    "grants": {"urn:ietf:params:oauth:grant-type:pre-authorized_code": {"pre-authorized_code": "<code>"}},
//    "credentialDataSupplierInput": {<claims>}}
import { createHash, randomBytes } from 'node:crypto';

import { VcIssuerBuilder } from '@sphereon/oid4vci-issuer';
import { OID4VCIServer } from '@sphereon/oid4vci-issuer-server';
import { ExpressBuilder } from '@sphereon/ssi-express-support';
import * as jose from 'jose';

const port = Number(process.env.PORT ?? 0);
if (!port) {
  console.error('PORT is required');
  process.exit(2);
}
const base = `http://127.0.0.1:${port}`;
const VCT = 'https://credentials.example.com/identity';
const PROOF_TYP = 'openid4vci-proof+jwt';

const tokenKeys = await jose.generateKeyPair('ES256');
const credentialKeys = await jose.generateKeyPair('ES256');

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

/** Signs the decoded SD-JWT VC payload: each top-level claim becomes a disclosure. */
async function signSdJwtVc(payload) {
  const registered = new Set(['iss', 'iat', 'nbf', 'exp', 'vct', 'cnf', 'status', 'sub']);
  const claims = {};
  const disclosures = [];
  const digests = [];
  for (const [name, value] of Object.entries(payload)) {
    if (registered.has(name)) {
      claims[name] = value;
      continue;
    }
    const disclosure = b64url(JSON.stringify([b64url(randomBytes(16)), name, value]));
    disclosures.push(disclosure);
    digests.push(createHash('sha256').update(disclosure).digest('base64url'));
  }
  claims._sd = digests.sort();
  claims._sd_alg = 'sha-256';
  const jwt = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg: 'ES256', typ: 'dc+sd-jwt' })
    .sign(credentialKeys.privateKey);
  return `${jwt}~${disclosures.join('~')}~`;
}

/** Verifies key proofs (with the JWK in their header) and the access tokens of this server. */
async function verifyJwt({ jwt }) {
  const header = jose.decodeProtectedHeader(jwt);
  if (header.typ === PROOF_TYP) {
    if (!header.jwk) {
      throw new Error('the proof has no jwk');
    }
    const key = await jose.importJWK(header.jwk, header.alg);
    const { payload } = await jose.jwtVerify(jwt, key, {
      algorithms: ['ES256'],
      typ: PROOF_TYP,
    });
    return { jwt: { header, payload }, alg: header.alg, jwk: header.jwk };
  }
  const { payload } = await jose.jwtVerify(jwt, tokenKeys.publicKey, {
    algorithms: ['ES256'],
    issuer: base,
  });
  return { jwt: { header, payload }, alg: header.alg };
}

const issuer = new VcIssuerBuilder()
  .withCredentialIssuer(base)
  .withCredentialEndpoint(`${base}/credential`)
  .withNonceEndpoint(`${base}/nonce`)
  .withIssuerDisplay({ name: 'Sphereon peer', locale: 'en' })
  .withCredentialConfigurationsSupported({
    identity: {
      format: 'dc+sd-jwt',
      vct: VCT,
      cryptographic_binding_methods_supported: ['jwk'],
      credential_signing_alg_values_supported: ['ES256'],
      proof_types_supported: { jwt: { proof_signing_alg_values_supported: ['ES256'] } },
    },
  })
  .withAuthorizationMetadata({
    issuer: base,
    token_endpoint: `${base}/token`,
    response_types_supported: [],
    'pre-authorized_grant_anonymous_access_supported': true,
  })
  .withInMemoryCredentialOfferState()
  .withInMemoryCredentialOfferURIState()
  .withInMemoryCNonceState()
  .withJWTVerifyCallback(verifyJwt)
  .withCredentialDataSupplier(async ({ credentialDataSupplierInput }) => ({
    format: 'dc+sd-jwt',
    credential: {
      iss: base,
      iat: Math.floor(Date.now() / 1000),
      vct: VCT,
      ...credentialDataSupplierInput,
    },
  }))
  .withCredentialSignerCallback(async ({ credential }) => signSdJwtVc(credential))
  .build();

const expressSupport = ExpressBuilder.fromServerOpts({ port, hostname: '127.0.0.1' }).build({
  startListening: false,
});
// Constructing the server registers its routes on the express app.
new OID4VCIServer(expressSupport, {
  issuer,
  baseUrl: base,
  endpointOpts: {
    tokenEndpointOpts: {
      accessTokenIssuer: base,
      accessTokenSignerCallback: async (jwt) =>
        new jose.SignJWT(jwt.payload)
          .setProtectedHeader({ ...jwt.header, alg: 'ES256' })
          .sign(tokenKeys.privateKey),
    },
    nonceOpts: { enabled: true },
  },
});
const { server } = expressSupport.start();
server.on('listening', () => console.log(`listening ${base}`));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
