// A wallet built on npm @openid4vc/openid4vci (the library Credo uses) that walks the
// pre-authorized code flow from a credential offer: offer → issuer and AS metadata → token
// (with the transaction code, DPoP-bound when asked) → nonce → credential with one JWT key
// proof per holder key → notification.
//
// Input (stdin, JSON): { "offer": "openid-credential-offer://…", "tx_code": "123456",
//                        "dpop": true, "keys": 2, "encrypt": false }
//
// The authorization code flow takes two runs, the person's login in a browser between them:
//   { "step": "authorize", "offer": …, "client_id": …, "redirect_uri": … } pushes the
//   authorization request (PAR, PKCE, DPoP key bound, the offer's issuer_state) and prints
//   { "authorization_request_url", "code_verifier", "dpop_key" (the private JWK) };
//   { "step": "redeem", "offer": …, "client_id", "redirect_uri", "redirect_url" (where the
//   login came back to), "code_verifier", "dpop_key", "keys": 1 } checks the authorization
//   response, redeems the code with DPoP and goes on as the pre-authorized flow does.
//   Wallet-initiated issuance gives "issuer" (the credential issuer identifier) and
//   "configurations" (credential configuration ids) instead of "offer", in both steps: the
//   wallet starts from the issuer's metadata, as Credo does, with an offer of its own that has
//   no issuer_state, and asks for the configurations by their scope.
// With "encrypt" (and a Bearer token), the credential request is sent as a JWE (npm jose) to
// the issuer's advertised request encryption key, asking for the response encrypted to a
// fresh ECDH-ES key, which jose decrypts.
// Output (stdout, JSON): { "token": {…}, "credential": {…}, "holder_jwks": [jwk…],
//                          "notification": "sent" | null }
// Errors are printed as JSON { "error": "…", "response": … } with exit code 1.
import { createHash, randomBytes } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { clientAuthenticationAnonymous, clientAuthenticationNone, HashAlgorithm, setGlobalConfig } from '@openid4vc/oauth2';
import { Openid4vciClient } from '@openid4vc/openid4vci';

// The issuer and authorization server of the tests listen on loopback over plain HTTP.
setGlobalConfig({ allowInsecureUrls: true });

const input = JSON.parse(await new Response(process.stdin).text());

const keys = new Map();
async function newKey() {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  keys.set(jwk.x, privateKey);
  return jwk;
}

const callbacks = {
  hash: (data, alg) => {
    const name = { [HashAlgorithm.Sha256]: 'sha256', [HashAlgorithm.Sha384]: 'sha384', [HashAlgorithm.Sha512]: 'sha512' }[alg];
    return new Uint8Array(createHash(name).update(data).digest());
  },
  generateRandom: (length) => new Uint8Array(randomBytes(length)),
  signJwt: async (signer, { header, payload }) => {
    if (signer.method !== 'jwk') throw new Error(`this wallet signs with jwk keys only, not ${signer.method}`);
    const privateKey = keys.get(signer.publicJwk.x);
    const jwt = await new SignJWT(payload).setProtectedHeader({ ...header, alg: signer.alg }).sign(privateKey);
    return { jwt, signerJwk: signer.publicJwk };
  },
  // A public client of the authorization code flow names itself at the token endpoint.
  clientAuthentication: input.client_id
    ? clientAuthenticationNone({ clientId: input.client_id })
    : clientAuthenticationAnonymous(),
};

const client = new Openid4vciClient({ callbacks });

// Sends `request` to the credential endpoint as a JWE and decrypts the JWE answer.
async function encryptedCredentialRequest(metadata, accessToken, request) {
  const encryption = metadata.credential_request_encryption;
  if (!encryption) throw new Error('the issuer advertises no credential_request_encryption');
  const issuerKey = encryption.jwks.keys[0];
  const enc = encryption.enc_values_supported[0];
  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES', { crv: 'P-256', extractable: true });
  const responseJwk = { ...(await exportJWK(publicKey)), alg: 'ECDH-ES', kid: 'wallet-response-key' };
  const body = { ...request, credential_response_encryption: { jwk: responseJwk, enc } };
  const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(body)))
    .setProtectedHeader({ alg: issuerKey.alg, enc, kid: issuerKey.kid })
    .encrypt(await importJWK(issuerKey, issuerKey.alg));
  const response = await fetch(metadata.credential_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/jwt', Authorization: `Bearer ${accessToken}` },
    body: jwe,
  });
  const text = await response.text();
  if (!response.ok || !(response.headers.get('content-type') ?? '').startsWith('application/jwt')) {
    const error = new Error(`the encrypted credential request answered ${response.status}`);
    error.response = { status: response.status, body: text, clone() { return this; }, text: async () => text };
    throw error;
  }
  const { plaintext, protectedHeader } = await compactDecrypt(text, privateKey);
  return {
    credentialResponse: JSON.parse(new TextDecoder().decode(plaintext)),
    responseHeader: protectedHeader,
  };
}

try {
  const credentialOffer = input.offer
    ? await client.resolveCredentialOffer(input.offer)
    : {
      credential_issuer: input.issuer,
      credential_configuration_ids: input.configurations,
      grants: { authorization_code: {} },
    };
  const issuerMetadata = await client.resolveIssuerMetadata(credentialOffer.credential_issuer);
  const supported = issuerMetadata.credentialIssuer.credential_configurations_supported;
  const scope = input.offer
    ? undefined
    : credentialOffer.credential_configuration_ids.map((id) => supported[id].scope).join(' ');

  let accessTokenResponse;
  let dpop;
  if (input.step === 'authorize') {
    const dpopJwk = await newKey();
    const { authorizationRequestUrl, pkce } = await client.createAuthorizationRequestUrlFromOffer({
      credentialOffer,
      issuerMetadata,
      clientId: input.client_id,
      redirectUri: input.redirect_uri,
      scope,
      dpop: { signer: { method: 'jwk', alg: 'ES256', publicJwk: dpopJwk } },
    });
    process.stdout.write(JSON.stringify({
      authorization_request_url: authorizationRequestUrl,
      code_verifier: pkce?.codeVerifier ?? null,
      dpop_key: await exportJWK(keys.get(dpopJwk.x)),
    }));
    process.exit(0);
  } else if (input.step === 'redeem') {
    const { d, ...dpopJwk } = input.dpop_key;
    keys.set(dpopJwk.x, await importJWK(input.dpop_key, 'ES256'));
    const authorizationServerMetadata = issuerMetadata.authorizationServers[0];
    const authorizationResponse = client.parseAndVerifyAuthorizationResponseRedirectUrl({
      url: input.redirect_url,
      authorizationServerMetadata,
    });
    if (authorizationResponse.error) {
      throw new Error(`the authorization failed: ${authorizationResponse.error}`);
    }
    ({ accessTokenResponse, dpop } = await client.retrieveAuthorizationCodeAccessTokenFromOffer({
      credentialOffer,
      issuerMetadata,
      authorizationCode: authorizationResponse.code,
      pkceCodeVerifier: input.code_verifier,
      redirectUri: input.redirect_uri,
      dpop: { signer: { method: 'jwk', alg: 'ES256', publicJwk: dpopJwk } },
    }));
  } else {
    const dpopJwk = input.dpop ? await newKey() : undefined;
    ({ accessTokenResponse, dpop } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
      credentialOffer,
      issuerMetadata,
      txCode: input.tx_code,
      dpop: dpopJwk ? { signer: { method: 'jwk', alg: 'ES256', publicJwk: dpopJwk } } : undefined,
    }));
  }

  const credentialConfigurationId = credentialOffer.credential_configuration_ids[0];
  const { c_nonce } = await client.requestNonce({ issuerMetadata });
  const holderJwks = [];
  const jwts = [];
  for (let i = 0; i < (input.keys ?? 1); i++) {
    const publicJwk = await newKey();
    holderJwks.push(publicJwk);
    const { jwt } = await client.createCredentialRequestJwtProof({
      issuerMetadata,
      credentialConfigurationId,
      nonce: c_nonce,
      signer: { method: 'jwk', alg: 'ES256', publicJwk },
    });
    jwts.push(jwt);
  }
  const credentials = input.encrypt
    ? await encryptedCredentialRequest(issuerMetadata.credentialIssuer, accessTokenResponse.access_token, {
      credential_configuration_id: credentialConfigurationId,
      proofs: { jwt: jwts },
    })
    : await client.retrieveCredentials({
      issuerMetadata,
      accessToken: accessTokenResponse.access_token,
      credentialConfigurationId,
      proofs: { jwt: jwts },
      dpop,
    });

  let notification = null;
  const notificationId = credentials.credentialResponse.notification_id;
  if (notificationId && issuerMetadata.credentialIssuer.notification_endpoint) {
    await client.sendNotification({
      issuerMetadata,
      accessToken: accessTokenResponse.access_token,
      notification: { notificationId, event: 'credential_accepted' },
      dpop: credentials.dpop ?? dpop,
    });
    notification = 'sent';
  }

  process.stdout.write(JSON.stringify({
    token: accessTokenResponse,
    credential: credentials.credentialResponse,
    holder_jwks: holderJwks,
    notification,
    response_header: credentials.responseHeader ?? null,
  }));
} catch (error) {
  let response = null;
  const body = error.response?.response ?? error.response;
  if (body && typeof body.clone === 'function') {
    response = { status: body.status, body: await body.clone().text() };
  }
  process.stdout.write(JSON.stringify({ error: `${error.name}: ${error.message}`, response, detail: error.errorResponse ?? null }));
  process.exitCode = 1;
}
