// OpenID4VP peer for EDK's interop tests, on npm @openid4vc/openid4vp (the library Credo uses)
// with SD-JWT VCs built and checked by npm @sd-jwt/sd-jwt-vc, JOSE by npm jose.
//
// Reads one JSON request from stdin and prints one JSON answer. Steps:
//
//   { "step": "wallet", "client_id": "x509_san_dns:…" | "decentralized_identifier:did:jwk:…",
//     "request": "<signed Request Object>", "trust_anchor": "<base64 DER root>",
//     "issuer_jwk": {private JWK with kid}, "holder_jwk": {private JWK}, "iss": "https://…",
//     "vct": "…", "claims": {…}, "disclose": ["name", …], "now": <unix seconds> }
//     -> { "posted": { "url", "content_type", "body" }, "state": …, "nonce": …,
//          "client_id": …, "credential_query_id": … }
//   The wallet resolves and verifies the Request Object (x5c chain to the trust anchor and the
//   leaf's dNSName SANs for x509_san_dns, the did:jwk key for decentralized_identifier), issues
//   an SD-JWT VC for the holder, presents the disclosed claims with a KB-JWT to the request's
//   client_id and nonce, encrypts the response to the request's client_metadata key for
//   direct_post.jwt, and posts it to response_uri: the post is captured and printed. With
//   "issuer_x5c": ["<base64 DER>", …] the SD-JWT VC carries that chain in its x5c header.
//
//   { "step": "wallet_http", "authorization_request_uri": "openid4vp://?…", and the inputs of
//     "wallet" but "client_id" and "request" }
//     -> { "status": <HTTP status from response_uri>, "body": "…", "client_id": …,
//          "response_mode": …, "nonce": …, "state": …, "credential_query_id": … }
//   The same wallet over HTTP: it parses the authorization request URI (a request by value,
//   or by reference: the Request Object fetched from request_uri), answers it, and posts the
//   response to response_uri. https://localhost URLs are reached over plain HTTP on loopback.
//
//   { "step": "verifier_request", "client_id": "redirect_uri:…", "response_uri": "…",
//     "nonce": "…", "state": "…", "dcql_query": {…} }
//     -> { "authorization_request": "openid4vp://?…", "payload": {…}, "private_jwk": {…} }
//   A verifier's unsigned direct_post.jwt request with a fresh ECDH-ES P-256 key.
//
//   { "step": "verifier_signed_request", "client_id": "x509_san_dns:…", "response_uri": "…",
//     "request_uri": "…", "nonce": "…", "state": "…", "dcql_query": {…},
//     "signer_jwk": {private JWK}, "x5c": ["<base64 DER>", …], "now": <unix seconds> }
//     -> { "authorization_request": "openid4vp://?client_id=…&request_uri=…",
//          "request_object": "<JWS>" }
//   A verifier's direct_post request signed as a Request Object with the x5c chain.
//
//   { "step": "verifier_response", "payload": {…request payload}, "private_jwk": {…},
//     "response": "<JWE>", "issuer_jwk": {public JWK}, "now": <unix seconds> }
//     -> { "vp_token": {…}, "state": …, "dcql_satisfied": bool,
//          "presentations": { id: [{ "claims": {…}, "kb": {…} }] } }
//   The verifier decrypts and parses the response, validates it against the DCQL query, and
//   verifies each SD-JWT VC (issuer signature with issuer_jwk, KB-JWT nonce and sd_hash).
//
// Errors are printed as JSON { "error": "…" } with exit code 1.
import { createHash, createPublicKey, randomBytes, sign as cryptoSign, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { compactDecrypt, compactVerify, CompactEncrypt, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { HashAlgorithm } from '@openid4vc/oauth2';
import {
  createOpenid4vpAuthorizationRequest,
  createOpenid4vpAuthorizationResponse,
  parseOpenid4vpAuthorizationRequest,
  parseOpenid4vpAuthorizationResponse,
  resolveOpenid4vpAuthorizationRequest,
  submitOpenid4vpAuthorizationResponse,
} from '@openid4vc/openid4vp';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';

const input = JSON.parse(await new Response(process.stdin).text());

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const hashName = { [HashAlgorithm.Sha256]: 'sha256', [HashAlgorithm.Sha384]: 'sha384', [HashAlgorithm.Sha512]: 'sha512' };

// ES256 signer and verifier in the shape @sd-jwt expects (base64url signatures over the
// signing input).
function es256Signer(privateJwk) {
  return async (data) =>
    b64url(cryptoSign('sha256', Buffer.from(data), { key: privateJwk, format: 'jwk', dsaEncoding: 'ieee-p1363' }));
}
function es256Verifier(publicJwk) {
  const key = createPublicKey({ key: publicJwk, format: 'jwk' });
  return async (data, signature) =>
    cryptoVerify('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
}
const publicOf = ({ d, ...rest }) => rest;

const hasher = (data, alg) => {
  const name = { 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512' }[alg ?? 'sha-256'];
  return new Uint8Array(createHash(name).update(data).digest());
};

// The certificate chain of an x5c header validated up to `anchor`: each certificate signed by
// the next, the last by the anchor, all valid at `now`.
function validateChain(x5c, anchor, now) {
  const certs = x5c.map((der) => new X509Certificate(Buffer.from(der, 'base64')));
  const root = new X509Certificate(Buffer.from(anchor, 'base64'));
  const when = new Date(now * 1000);
  const chain = [...certs, root];
  for (let i = 0; i < certs.length; i++) {
    const cert = certs[i];
    if (when < new Date(cert.validFrom) || when > new Date(cert.validTo)) throw new Error('an x5c certificate is not valid now');
    const issuer = chain[i + 1];
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) throw new Error('the x5c chain does not lead to the trust anchor');
  }
  return certs[0];
}

function didJwkKey(didUrl) {
  const did = didUrl.split('#')[0];
  if (!did.startsWith('did:jwk:')) throw new Error(`only did:jwk is resolved here, not ${did}`);
  return JSON.parse(Buffer.from(did.slice('did:jwk:'.length), 'base64url').toString('utf8'));
}

const callbacks = {
  hash: (data, alg) => new Uint8Array(createHash(hashName[alg]).update(data).digest()),
  generateRandom: (length) => new Uint8Array(randomBytes(length)),
  fetch: () => {
    throw new Error('no network in this test');
  },
  getX509CertificateMetadata: (certificate) => {
    const cert = new X509Certificate(Buffer.from(certificate, 'base64'));
    const names = (cert.subjectAltName ?? '').split(',').map((name) => name.trim());
    return {
      sanDnsNames: names.filter((name) => name.startsWith('DNS:')).map((name) => name.slice(4)),
      sanUriNames: names.filter((name) => name.startsWith('URI:')).map((name) => name.slice(4)),
    };
  },
  verifyJwt: async (signer, { compact }) => {
    let key;
    if (signer.method === 'x5c') {
      const leaf = validateChain(signer.x5c, input.trust_anchor, input.now);
      key = leaf.publicKey;
    } else if (signer.method === 'did') {
      key = await importJWK(didJwkKey(signer.didUrl), signer.alg);
    } else if (signer.method === 'jwk') {
      key = await importJWK(signer.publicJwk, signer.alg);
    } else {
      return { verified: false };
    }
    try {
      await compactVerify(compact, key);
    } catch {
      return { verified: false };
    }
    const signerJwk = key.export ? key.export({ format: 'jwk' }) : await exportJWK(key);
    return { verified: true, signerJwk };
  },
  encryptJwe: async (encryptor, data) => {
    if (encryptor.method !== 'jwk') throw new Error(`cannot encrypt with ${encryptor.method}`);
    const header = { alg: encryptor.alg, enc: encryptor.enc, kid: encryptor.publicJwk.kid };
    if (encryptor.apu) header.apu = encryptor.apu;
    if (encryptor.apv) header.apv = encryptor.apv;
    const jwe = await new CompactEncrypt(new TextEncoder().encode(data))
      .setProtectedHeader(header)
      .encrypt(await importJWK(encryptor.publicJwk, encryptor.alg));
    return { encryptionJwk: encryptor.publicJwk, jwe };
  },
  decryptJwe: async (jwe) => {
    const jwk = input.private_jwk;
    try {
      const { plaintext } = await compactDecrypt(jwe, await importJWK(jwk, jwk.alg));
      return { decrypted: true, decryptionJwk: publicOf(jwk), payload: new TextDecoder().decode(plaintext) };
    } catch {
      return { decrypted: false };
    }
  },
  signJwt: async () => {
    throw new Error('nothing is signed with openid4vp here');
  },
};

// The verifier under test listens on loopback without TLS: https://localhost URLs it names
// are reached over http.
const loopbackFetch = (url, init) => {
  const target = new URL(String(url));
  if (target.protocol === 'https:' && ['localhost', '127.0.0.1'].includes(target.hostname)) target.protocol = 'http:';
  return fetch(target, init);
};

// An SD-JWT VC of the input's claims issued for the holder, presented with the disclosed
// claims and a KB-JWT to `request`, as the library's authorization response.
async function answer(resolved) {
  const request = resolved.authorizationRequestPayload;
  const query = resolved.dcql?.query;
  if (!query) throw new Error('the request has no dcql_query');
  const credentialQuery = query.credentials[0];

  const sdjwt = new SDJwtVcInstance({
    signer: es256Signer(input.issuer_jwk),
    signAlg: 'ES256',
    kbSigner: es256Signer(input.holder_jwk),
    kbSignAlg: 'ES256',
    hasher,
    hashAlg: 'sha-256',
    saltGenerator: (length) => b64url(randomBytes(length)),
  });
  const credential = await sdjwt.issue(
    {
      iss: input.iss,
      iat: input.now - 3600,
      vct: input.vct,
      cnf: { jwk: publicOf(input.holder_jwk) },
      ...input.claims,
    },
    { _sd: Object.keys(input.claims) },
    { header: input.issuer_x5c ? { x5c: input.issuer_x5c } : { kid: input.issuer_jwk.kid } },
  );
  const frame = Object.fromEntries(input.disclose.map((name) => [name, true]));
  const presentation = await sdjwt.present(credential, frame, {
    kb: { payload: { aud: request.client_id, nonce: request.nonce, iat: input.now } },
  });

  const encrypted = request.response_mode === 'direct_post.jwt';
  const response = await createOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: { vp_token: { [credentialQuery.id]: [presentation] } },
    jarm: encrypted
      ? {
          encryption: { nonce: b64url(randomBytes(16)) },
          serverMetadata: {
            authorization_signing_alg_values_supported: ['ES256'],
            authorization_encryption_alg_values_supported: ['ECDH-ES'],
            authorization_encryption_enc_values_supported: ['A128GCM', 'A256GCM'],
          },
        }
      : undefined,
    callbacks,
  });
  if (encrypted && !response.jarm) throw new Error('the library did not encrypt the response');
  return { request, credentialQuery, response };
}

async function wallet() {
  const resolved = await resolveOpenid4vpAuthorizationRequest({
    authorizationRequestPayload: { client_id: input.client_id, request: input.request },
    callbacks,
  });
  const { request, credentialQuery, response } = await answer(resolved);
  // The library posts the response to response_uri; the post is captured instead of sent.
  let posted;
  await submitOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: response.authorizationResponsePayload,
    jarm: response.jarm,
    callbacks: {
      fetch: async (url, init) => {
        posted = { url: String(url), content_type: new Headers(init.headers).get('content-type'), body: String(init.body) };
        return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
      },
    },
  });
  return {
    posted,
    state: response.authorizationResponsePayload.state ?? null,
    nonce: request.nonce,
    client_id: request.client_id,
    credential_query_id: credentialQuery.id,
  };
}

async function walletHttp() {
  const parsed = parseOpenid4vpAuthorizationRequest({ authorizationRequest: input.authorization_request_uri });
  const httpCallbacks = { ...callbacks, fetch: loopbackFetch };
  const resolved = await resolveOpenid4vpAuthorizationRequest({
    authorizationRequestPayload: parsed.params,
    callbacks: httpCallbacks,
  });
  const { request, credentialQuery, response } = await answer(resolved);
  const submitted = await submitOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: response.authorizationResponsePayload,
    jarm: response.jarm,
    callbacks: httpCallbacks,
  });
  return {
    status: submitted.response.status,
    body: await submitted.response.text(),
    client_id: request.client_id,
    response_mode: request.response_mode,
    nonce: request.nonce,
    state: response.authorizationResponsePayload.state ?? null,
    credential_query_id: credentialQuery.id,
  };
}

async function verifierRequest() {
  const { privateKey, publicKey } = await generateKeyPair('ECDH-ES', { crv: 'P-256', extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'enc-1', alg: 'ECDH-ES', use: 'enc' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid: 'enc-1', alg: 'ECDH-ES', use: 'enc' };
  const created = await createOpenid4vpAuthorizationRequest({
    authorizationRequestPayload: {
      response_type: 'vp_token',
      client_id: input.client_id,
      response_uri: input.response_uri,
      response_mode: 'direct_post.jwt',
      nonce: input.nonce,
      state: input.state,
      dcql_query: input.dcql_query,
      client_metadata: {
        jwks: { keys: [publicJwk] },
        encrypted_response_enc_values_supported: ['A128GCM'],
        vp_formats_supported: { 'dc+sd-jwt': { 'sd-jwt_alg_values': ['ES256'], 'kb-jwt_alg_values': ['ES256'] } },
      },
    },
    callbacks,
  });
  return {
    authorization_request: created.authorizationRequest,
    payload: created.authorizationRequestPayload,
    private_jwk: privateJwk,
  };
}

async function verifierSignedRequest() {
  const created = await createOpenid4vpAuthorizationRequest({
    authorizationRequestPayload: {
      response_type: 'vp_token',
      client_id: input.client_id,
      response_uri: input.response_uri,
      response_mode: 'direct_post',
      nonce: input.nonce,
      state: input.state,
      dcql_query: input.dcql_query,
    },
    jar: {
      jwtSigner: { method: 'x5c', x5c: input.x5c, alg: 'ES256' },
      requestUri: input.request_uri,
      expiresInSeconds: 300,
      // The library's default aud is the request_uri; OpenID4VP §5.8 names this one.
      additionalJwtPayload: { aud: 'https://self-issued.me/v2' },
    },
    now: new Date(input.now * 1000),
    callbacks: {
      ...callbacks,
      signJwt: async (signer, { header, payload }) => {
        const key = await importJWK(input.signer_jwk, 'ES256');
        const jwt = await new SignJWT(payload).setProtectedHeader({ ...header, alg: signer.alg }).sign(key);
        return { jwt, signerJwk: publicOf(input.signer_jwk) };
      },
    },
  });
  return {
    authorization_request: created.authorizationRequest,
    request_object: created.jar.authorizationRequestJwt,
  };
}

async function verifierResponse() {
  const parsed = await parseOpenid4vpAuthorizationResponse({
    authorizationResponse: { response: input.response },
    authorizationRequestPayload: input.payload,
    callbacks,
  });
  const sdjwt = new SDJwtVcInstance({
    verifier: es256Verifier(input.issuer_jwk),
    kbVerifier: async (data, signature, payload) => {
      const holder = payload?.cnf?.jwk;
      if (!holder) return false;
      return es256Verifier(holder)(data, signature);
    },
    hasher,
    hashAlg: 'sha-256',
  });
  const vpToken = parsed.authorizationResponsePayload.vp_token;
  const presentations = {};
  for (const [id, entries] of Object.entries(vpToken)) {
    presentations[id] = [];
    for (const entry of entries) {
      const verified = await sdjwt.verify(entry, {
        keyBindingNonce: input.payload.nonce,
        currentDate: input.now,
      });
      if (verified.kb?.payload?.aud !== input.payload.client_id) throw new Error('the KB-JWT aud is not the client_id');
      presentations[id].push({ claims: verified.payload, kb: verified.kb?.payload ?? null });
    }
  }
  return {
    vp_token: vpToken,
    state: parsed.authorizationResponsePayload.state ?? null,
    dcql_satisfied: parsed.type === 'dcql' ? parsed.dcql.presentationResult?.can_be_satisfied ?? null : null,
    presentations,
  };
}

try {
  const steps = {
    wallet,
    wallet_http: walletHttp,
    verifier_request: verifierRequest,
    verifier_signed_request: verifierSignedRequest,
    verifier_response: verifierResponse,
  };
  const step = steps[input.step];
  if (!step) throw new Error(`unknown step ${input.step}`);
  process.stdout.write(JSON.stringify(await step()));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.message ?? error), details: error?.errorResponse ?? null }));
  process.exitCode = 1;
}
